"""The Telegram front end: python-telegram-bot's Application over the shared bot service."""
