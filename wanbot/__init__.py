"""wanbot's launcher: configuration, logging and the processes (bot, worker, demo, CLIs)."""
