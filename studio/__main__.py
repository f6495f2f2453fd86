"""``python -m studio``: serve the motion studio (127.0.0.1:7860 unless told otherwise)."""

import flows  # noqa: F401  (the project's environment defaults, set before torch loads)

# isort: split
import logging
import sys

from studio.settings import is_loopback, parse_args


def main(argv: list[str] | None = None) -> None:
    import uvicorn

    from studio.app import create_app

    settings = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if not is_loopback(settings.host):
        print(
            f"studio: serving on {settings.host}, not only this machine: anyone who reaches it can upload "
            "files and start generations (no log-in)",
            file=sys.stderr,
        )
    app = create_app(settings)
    studio = app.state.studio
    mode = studio.generator.runner.mode
    print(f"studio: checkpoint {studio.model.name}, generating {mode}, data in {settings.data_dir}")
    if studio.model.checkpoint is not None:
        studio.generator.warm_up()
    print(f"studio: open http://{settings.host}:{settings.port}/")
    uvicorn.run(app, host=settings.host, port=settings.port, log_level="warning")


if __name__ == "__main__":
    main()
