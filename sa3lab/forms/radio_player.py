"""The radio's gapless player: an anywidget whose page script schedules each segment with WebAudio.

Core ipywidgets' ``Audio`` replaces its ``<audio>`` element on every change, so consecutive clips play
with a gap (and the first samples of each are lost to the element's start-up). Here the kernel sends
each new stretch of the stream as a WAV in a custom widget message (nothing is kept in the widget's
state, so nothing grows the saved notebook); the page decodes it (``decodeAudioData``) and starts it
with ``AudioBufferSourceNode.start(t)`` at exactly the time the previous stretch ends on the
``AudioContext``'s clock, which plays the buffers back to back, sample-exact. Playback starts once
:attr:`RadioPlayer.prebuffer_s` seconds are queued (the form sets one segment); when the queue runs
dry (the kernel fell behind) it buffers that much again, and the schedule marks the gap. The page's
schedule (index, start, duration, frames, sample rate, gap) is in the player element's
``data-schedule`` attribute (``data-now``: its clock; ``data-received``: stretches received), and
the status line says how many seconds are buffered.

anywidget works in JupyterLab 4, Notebook 7, VS Code and classic Notebook 6.5 (its nbextension); on
Colab it needs the custom widget manager, which :class:`RadioPlayer` enables there.
"""

from __future__ import annotations

import sys

import anywidget
import numpy as np
import torch
import traitlets

from .. import peaks, render

ESM = r"""
function render({ model, el }) {
  const box = document.createElement("div");
  box.className = "sa3lab-radio-player";
  box.dataset.schedule = "[]";
  const button = document.createElement("button");
  button.textContent = "▶ Listen";
  const status = document.createElement("span");
  status.className = "sa3lab-radio-status";
  status.textContent = " press Listen, then Start: the stream plays here as it is made";
  box.append(button, status);
  el.append(box);

  const LEAD = 0.1; // seconds from deciding to play to the first sample
  let ctx = null;
  let next = 0; // where the next stretch starts on the AudioContext clock
  let playing = false; // false before the start and after running dry: then buffer first
  let flushing = false; // the kernel stopped: play what is queued without waiting for more
  const raw = []; // stretches that arrived before Listen
  const queue = []; // decoded stretches not yet scheduled
  const schedule = [];
  let chain = Promise.resolve();

  function show() {
    box.dataset.schedule = JSON.stringify(schedule);
    if (!ctx) return;
    box.dataset.now = String(ctx.currentTime);
    const ahead = Math.max(0, next - ctx.currentTime) + queue.reduce((t, q) => t + q.buffer.duration, 0);
    const gaps = schedule.filter((s) => s.gap).length;
    status.textContent = ` buffer: ${ahead.toFixed(1)} s ahead · ${schedule.length} stretches scheduled` +
      (playing ? "" : " · buffering") + (gaps ? ` · ${gaps} waits for the kernel` : "");
  }

  function pump() {
    if (playing && next < ctx.currentTime + 0.02) playing = false; // ran dry: buffer again
    const queued = queue.reduce((t, q) => t + q.buffer.duration, 0);
    if (!playing && queue.length && (flushing || queued >= model.get("prebuffer_s"))) {
      playing = true;
      const gap = schedule.length > 0;
      next = ctx.currentTime + LEAD;
      queue[0].gap = gap;
    }
    while (playing && queue.length) {
      const { buffer, index, gap, arrived } = queue.shift();
      const source = ctx.createBufferSource();
      source.buffer = buffer;
      source.connect(ctx.destination);
      source.start(next);
      schedule.push({ index, start: next, duration: buffer.duration, frames: buffer.length,
                      rate: buffer.sampleRate, gap: Boolean(gap), arrived });
      next += buffer.duration;
    }
    show();
  }

  function take(index, bytes) {
    chain = chain
      .then(() => ctx.decodeAudioData(bytes))
      .then((buffer) => { queue.push({ buffer, index, arrived: ctx.currentTime }); pump(); })
      .catch((error) => { status.textContent = ` could not play stretch ${index}: ${error}`; });
  }

  model.on("msg:custom", (msg, buffers) => {
    if (msg && msg.kind === "flush") {
      flushing = true;
      if (ctx) chain = chain.then(pump);
      return;
    }
    if (!msg || msg.kind !== "stretch" || !buffers || !buffers.length) return;
    flushing = false;
    const view = buffers[0];
    const bytes = view.buffer.slice(view.byteOffset, view.byteOffset + view.byteLength);
    box.dataset.received = String(Number(box.dataset.received || 0) + 1);
    if (ctx) take(msg.index, bytes);
    else {
      raw.push([msg.index, bytes]);
      status.textContent = ` ${raw.length} stretches of the stream are waiting: press Listen`;
    }
  });

  button.addEventListener("click", () => {
    if (ctx) return;
    ctx = new AudioContext();
    button.disabled = true;
    button.textContent = "♪ Listening";
    for (const [index, bytes] of raw.splice(0)) take(index, bytes);
    setInterval(() => { if (playing) pump(); else show(); }, 250);
    show();
  });
}
export default { render };
"""

CSS = ".sa3lab-radio-player { margin: 4px 0; } .sa3lab-radio-status { color: #555; font-size: 12px; }"


class RadioPlayer(anywidget.AnyWidget):
    """Plays the stretches :meth:`add` sends back to back in the page (see the module's notes)."""

    _esm = ESM
    _css = CSS
    prebuffer_s = traitlets.Float(1.0).tag(sync=True)  # seconds queued before playing (again)

    def __init__(self, **kwargs):
        if "google.colab" in sys.modules:  # Colab shows third-party widgets only with this on
            from google.colab import output

            output.enable_custom_widget_manager()
        super().__init__(**kwargs)
        self.sent = 0
        self._gain: peaks.StreamGain | None = None  # the stream's gain, at its sample rate
        self._rate = 0

    def add(self, audio: np.ndarray, sample_rate: int, *, new_stream: bool = False) -> None:
        """Queue ``audio`` ((channels, samples), finite) after what was sent before, at the stream's one
        falling gain (:class:`sa3lab.peaks.StreamGain`: its last 20 ms wait for the next stretch);
        ``new_stream``: it does not continue what was sent before."""
        if self._gain is None or new_stream or sample_rate != self._rate:
            self._send_held()
            self._gain, self._rate = peaks.StreamGain(sample_rate), sample_rate
        self._send_stretch(self._gain.push(audio))

    def flush(self) -> None:
        """The kernel stopped: send the held samples, and play what is queued without waiting for a
        full buffer."""
        self._send_held()
        self.send({"kind": "flush"})

    def _send_held(self) -> None:
        if self._gain is not None:
            self._send_stretch(self._gain.flush())

    def _send_stretch(self, audio: np.ndarray) -> None:
        if audio.shape[-1] == 0:
            return
        self.send(
            {"kind": "stretch", "index": self.sent},
            [render.wav_bytes(torch.from_numpy(np.ascontiguousarray(audio)), self._rate)],
        )
        self.sent += 1
