"""The data subject requests app: intake, verification, review, and the engine that runs jobs."""
