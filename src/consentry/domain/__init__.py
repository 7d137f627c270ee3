"""The pure core: no I/O, no async, no framework. Time is always passed in."""
