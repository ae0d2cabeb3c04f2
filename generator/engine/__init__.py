"""The GPU side: diffusers pipelines loaded once per worker, one render with progress and cancel."""
