"""The Stable Audio 3 prompt style the Prompt Assistant writes, and how its answers are cleaned up.

SA3's training captions read like ``TrackType: Music, VocalType: Instrumental, <one sentence of
genre, instruments, layers, rhythm and mood>. BPM: 120.`` (stems start ``TrackType: Instrument, ``,
sound effects ``TrackType: SFX, ``; one-shots carry no tag), and the clip length is a separate
setting. The assistant is asked for the sentence plus ``BPM: X.`` and a closing ``Length: N
seconds``; :func:`finish` moves that length out into a proposed duration and puts the tag in front.
The instructions are this project's own wording of the presets of upstream's Prompt Assistant
(``stable_audio_3/interface/reprompt.py`` @636f906): same categories, fields, length ranges and
output rules, fewer examples.
"""

from __future__ import annotations

import re

PRESETS = ("Auto", "Music", "Instrument", "SFX", "One-shot")
CATEGORIES = PRESETS[1:]

TAGS = {
    "Music": "TrackType: Music, VocalType: Instrumental, ",
    "Instrument": "TrackType: Instrument, ",
    "SFX": "TrackType: SFX, ",
    "One-shot": "",
}

_RULES = (
    "Answer with the prompt alone: no preamble, no quotes, no list marks, no markdown, no brackets. "
    "Never mention vocals, singing, voices, choirs, rap or lyrics: the model makes instrumental audio. "
    "Keep it under 45 words and end with 'Length: N seconds.' where N is a whole number."
)

SYSTEM_PROMPTS = {
    "Music": (
        "You turn a short idea into a prompt for an AI that generates instrumental music. Write one "
        "flowing sentence, without semicolons, in this order: the genre or style with a few adjectives; "
        "the lead instruments; supporting layers such as pads, textures, effects or field recordings; the "
        "drums or percussion; the mood and energy, woven into the sentence. Then add 'BPM: X.' with a "
        "tempo that suits the style, and the length: 120 to 180 seconds for dance and energetic music, "
        "180 to 210 for pop and rock, 240 to 300 for ambient and film music, shorter only if asked. "
        + _RULES
        + "\nShape: <style> with <lead instruments>, <layers> and <percussion>, <mood>. BPM: X. "
        "Length: Y seconds.\nExamples:\n"
        "- Deep house groove with a rubbery synth bass, airy electric piano chords, a soft "
        "pad wash and a tight four-on-the-floor kick with shuffled hats, warm and hypnotic late-night "
        "energy. BPM: 122. Length: 150 seconds.\n"
        "- Slow cinematic score with a solo cello theme, low string swells, distant piano notes and "
        "rolling timpani, building from fragile sorrow to a hopeful climax. BPM: 68. Length: 260 seconds.\n"
        "- Garage rock tune with fuzzy rhythm guitars, a punchy bass line, a bright organ riff and a loose "
        "live drum kit, raw and cheerful. BPM: 140. Length: 190 seconds."
    ),
    "Instrument": (
        "You turn a short idea into a prompt for an AI that generates a single instrument part: a loop "
        "or a stem. Name the instrument, then how it is played, then its material, timbre or texture, "
        "then the style or mood it serves, then the room or production (dry, roomy, tape, close-miked). "
        "Always add 'BPM: X.' with a fitting tempo. Lengths: 6 to 20 seconds for loops, 20 to 180 seconds "
        "for stems or longer motifs. " + _RULES + "\nExamples:\n"
        "- Fingerpicked nylon guitar arpeggio loop with soft warm strings and gentle room air, wistful "
        "bossa feel. BPM: 92. Length: 12 seconds.\n"
        "- Drum loop with a dusty kick on the one, a cracking snare on two and four and swung closed hats, "
        "lo-fi tape saturation. BPM: 86. Length: 10 seconds.\n"
        "- Expressive solo violin motif with slow vibrato and rich wooden resonance in a large hall, "
        "cinematic and tender. BPM: 72. Length: 40 seconds."
    ),
    "SFX": (
        "You turn a short idea into a prompt for an AI that generates sound effects and ambiences. In "
        "one or two dense sentences describe the source; its physical character (material, texture, "
        "timbre: metal, wood, glass, stone, water); the space (indoors or outdoors, cave, street, "
        "underwater, dry or reverberant, close or distant); how it evolves (attack, decay, build, "
        "transitions); and any motion (passing, approaching, moving across the stereo field). Be concrete "
        "and realistic, one coherent scene, no repetition. Lengths: 1 to 3 seconds for impacts, clicks "
        "and shots, 3 to 6 for actions such as footsteps or handling objects, 6 to 15 for ambiences. "
        + _RULES
        + "\nExamples:\n"
        "- Heavy wooden door creaking open in an empty stone hall, slow groaning hinge and a long echoing "
        "tail. Length: 4 seconds.\n"
        "- Light rain on a tent canopy with soft irregular patters, distant rumbling thunder and wind in "
        "nearby trees. Length: 12 seconds.\n"
        "- Sports car passing from left to right at speed, rising engine roar and a sharp doppler drop. "
        "Length: 3 seconds."
    ),
    "One-shot": (
        "You turn a short idea into a prompt for an AI that generates one-shot samples: a single isolated "
        "hit, note or sound for music production. Name the instrument or source, the way it is struck or "
        "played (hit, pluck, stab, tap, slam), its material, timbre or texture, and the production (dry "
        "or wet, room, close mic, saturation). Lengths: 1 to 11 seconds, mostly 1 to 3. "
        + _RULES
        + "\nExamples:\n"
        "- Punchy acoustic kick drum with a tight felt beater click and a short warm low end, dry studio "
        "room. Length: 1 second.\n"
        "- Bright analog synth stab with a detuned saw chord and a short plate reverb tail. Length: 2 "
        "seconds.\n"
        "- Soft felt piano note with a gentle hammer attack and a long natural decay. Length: 4 seconds."
    ),
}

CLASSIFIER_PROMPT = (
    "Sort the user's idea into exactly one category and answer with its label only, no other word. "
    "music_genre: a style or genre of music, or a whole piece or track (techno, jazz ballad, film "
    "score). instrument: an instrument, or a loop, solo or stem played on one (cello, drum loop, "
    "guitar solo). sound: a sound effect or ambience that is not an instrument (rain, door, engine, "
    "crowd). one_shot: a single short isolated hit or note for music production (kick, snare hit, 808, "
    "piano stab, riser). If unsure, pick the closest."
)
_LABELS = (("music_genre", "Music"), ("one_shot", "One-shot"), ("instrument", "Instrument"))

_LENGTH_AT_END = re.compile(r"\s*\bLength:\s*(\d+)\s*seconds?\.?\s*$", re.IGNORECASE)
_MARKUP = re.compile(r"[\[\]*#]")
_VOCALS = re.compile(
    r"\b(vocals?|sing(s|ing|er|ers)?|voices?|choirs?|chorus|rap(s|per|pers)?|chant(s|ing)?|lyrics?|"
    r"male|female)\b",
    re.IGNORECASE,
)
_SENTENCE_START = re.compile(r"(^|[.!?]\s+)([a-z])")
MAX_WORDS = 45


def check_preset(preset: str) -> str:
    if preset not in PRESETS:
        raise ValueError(f"Unknown preset {preset!r}: choose one of {', '.join(PRESETS)}.")
    return preset


def category_from_tags(idea: str) -> str | None:
    """The category an idea already names with SA3 tags (``TrackType: SFX`` ...), else None."""
    lowered = idea.lower()
    if "tracktype: music" in lowered and "vocaltype: instrumental" in lowered:
        return "Music"
    if "tracktype: instrument" in lowered:
        return "Instrument"
    if "tracktype: sfx" in lowered:
        return "SFX"
    return None


def category_from_label(answer: str) -> str:
    """The category a classifier answer names; anything unrecognised counts as a sound effect."""
    lowered = answer.lower()
    return next((category for label, category in _LABELS if label in lowered), "SFX")


def answer_text(raw: str) -> str:
    """The model's answer without a reasoning block, a list mark or surrounding quotes."""
    text = raw.split("</think>", 1)[1] if "</think>" in raw else raw
    text = text.strip()
    if text.startswith("- "):
        text = text[2:]
    return text.strip().strip('"“”').strip()


def follows_style(raw: str) -> bool:
    """Whether an answer keeps the rules: no markup, no vocals, short, ends with ``Length: N seconds``."""
    text = answer_text(raw)
    return (
        not _MARKUP.search(text)
        and not _VOCALS.search(text)
        and bool(_LENGTH_AT_END.search(text))
        and len(text.split()) <= MAX_WORDS
    )


def finish(raw: str, category: str) -> tuple[str, int | None]:
    """``(prompt, proposed seconds)``: sentence starts capitalised, the length moved out, the tag added."""
    text = _SENTENCE_START.sub(lambda m: m.group(1) + m.group(2).upper(), answer_text(raw))
    seconds = None
    if match := _LENGTH_AT_END.search(text):
        seconds, text = int(match.group(1)), text[: match.start()].rstrip()
    if text and not text.lower().startswith("tracktype:"):
        text = TAGS[category] + text
    return text, seconds
