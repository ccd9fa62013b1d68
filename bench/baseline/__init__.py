"""Hand-written FastAPI and Starlette apps over raw asyncpg: the baselines the app is measured against."""
