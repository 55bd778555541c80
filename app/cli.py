"""Command-line entry point: `diffusion-lab serve|train|evaluate`."""

import argparse
import sys


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from app.config import get_settings

    settings = get_settings()
    uvicorn.run(
        "app.main:create_app",
        factory=True,
        host=args.host or settings.host,
        port=args.port or settings.port,
        log_level=settings.log_level,
        root_path=settings.root_path,
    )
    return 0


def _train(args: argparse.Namespace) -> int:
    from app.train import main as train_main  # lazily: `serve` never imports training code

    return train_main([args.what, *args.rest], prog="diffusion-lab train")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="diffusion-lab", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="serve the web app and the REST API")
    serve.add_argument("--host", default=None, help="bind address (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=None, help="port (default 8000)")
    serve.set_defaults(func=_serve)

    train = sub.add_parser("train", help="train the VAE or the denoiser (see `train vae --help`)")
    train.add_argument("what", choices=("vae", "denoiser"))
    train.add_argument("rest", nargs=argparse.REMAINDER, help="options of `python3 -m app.train vae|denoiser`")
    train.set_defaults(func=_train)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
