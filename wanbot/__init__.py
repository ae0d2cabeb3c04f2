"""wanbot's launcher: the `wanbot` command and the processes it starts (bot, worker, demo, CLIs).
It imports every package and none imports it."""
