"""Command-line entry point: `diffusion-lab serve|train|evaluate|evaluate-video`."""

import argparse
import sys


def _serve(args: argparse.Namespace) -> int:
    from app.config import ConfigError, load_settings, unknown_variables

    try:
        settings = load_settings()
    except ConfigError as err:  # an operator's typo: say which variable, no traceback
        print(f"diffusion-lab serve: invalid configuration\n{err}", file=sys.stderr)
        return 2
    for name in unknown_variables():
        print(f"diffusion-lab serve: warning: {name} is not a setting and is ignored", file=sys.stderr)
    from app.server import serve  # imports torch and the app: only once the settings are known to be good

    return serve(settings, host=args.host or settings.host, port=args.port or settings.port)


def _train(args: argparse.Namespace) -> int:
    from app.training.cli import main as train_main  # lazily: `serve` never imports training code

    return train_main([args.what, *args.rest], prog="diffusion-lab train")


def _evaluate(args: argparse.Namespace) -> int:
    from app.evaluation.image import main as evaluate_main  # lazily, like `train`

    return evaluate_main(args.rest, prog="diffusion-lab evaluate")


def _evaluate_video(args: argparse.Namespace) -> int:
    from app.evaluation.video import main as evaluate_video_main  # lazily, like `train`

    return evaluate_video_main(args.rest, prog="diffusion-lab evaluate-video")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="diffusion-lab", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="serve the web app and the REST API")
    serve.add_argument("--host", default=None, help="bind address (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=None, help="port (default 8000)")
    serve.set_defaults(func=_serve)

    train = sub.add_parser("train", help="train the VAE, the denoiser or the video model (see `train vae --help`)")
    train.add_argument("what", choices=("vae", "denoiser", "video"))
    train.add_argument("rest", nargs=argparse.REMAINDER, help="options of `python3 -m app.training vae|denoiser|video`")
    train.set_defaults(func=_train)

    # prefix_chars="+": every "--option" (and -h) passes through untouched to app.evaluation.image's own parser.
    evaluate = sub.add_parser("evaluate", add_help=False, prefix_chars="+",
                              help="measure the model; write models/model-card.json and README.md (`evaluate -h`)")
    evaluate.add_argument("rest", nargs=argparse.REMAINDER, help="options of `python3 -m app.evaluation.image`")
    evaluate.set_defaults(func=_evaluate)

    evaluate_video = sub.add_parser("evaluate-video", add_help=False, prefix_chars="+",
                                    help="measure the video model against the image model frame by frame; write "
                                         "models/video-card.json and VIDEO.md (`evaluate-video -h`)")
    evaluate_video.add_argument("rest", nargs=argparse.REMAINDER, help="options of `python3 -m app.evaluation.video`")
    evaluate_video.set_defaults(func=_evaluate_video)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
