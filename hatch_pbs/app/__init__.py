"""The application stage: install the project and its dependencies into ``app/`` and write the launchers."""
