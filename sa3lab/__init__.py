"""sa3lab: notebook helpers and widget forms for running Stable Audio 3."""
