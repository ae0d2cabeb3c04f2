"""The Discord front end: discord.py app commands, persistent buttons, over the shared bot service."""
