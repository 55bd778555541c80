"""What a snippet runs inside, in the reader's browser (Pyodide): its helpers, its output and its errors.

The page's worker (static/js/snippet_worker.js) imports this module once and calls run() for every Run. `post` is
the worker's function that hands one message to the page, post(kind, json_text):
    output  {"chunks": [[stream, text], ...]}   stdout and stderr in the order they were written
    plot    {"xs", "ys", "title"}               from plot_xy()
    image   {"width", "height", "rgba", "title"} from show_image(); rgba is base64, 4 bytes a pixel
    done    {"ok", "seconds", "values"}          values: the globals the page asked to see, as JSON can carry them
Nothing here imports `js`, so the same file runs under CPython in the tests.
"""

import base64
import io
import json
import linecache
import math
import sys
import time
import traceback
import warnings

OUTPUT_LIMIT = 200_000  # characters of stdout and stderr one run shows; an endless print loop stops being shown there
# A finished line reaches the page at once, as in a terminal, unless LINES_AT_ONCE lines went in the last WINDOW_S:
# then output goes in one batch per WINDOW_S, so a print loop cannot flood the page with messages.
WINDOW_S = 0.05
LINES_AT_ONCE = 20
MAX_PLOTS = 20
MAX_POINTS = 100_000
MAX_IMAGE_SIDE = 1024
TRUNCATED = "\n[output truncated: a run shows at most {limit:,} characters]\n"


class Terminal:
    """One run's stdout and stderr, interleaved as written, posted line by line or in batches (see WINDOW_S); capped
    at OUTPUT_LIMIT characters."""

    def __init__(self, post, clock=time.monotonic):
        self.post, self.clock = post, clock
        self.pending: list[list[str]] = []
        self.shown, self.truncated = 0, False
        self.window_started, self.posts_in_window = clock(), 0

    def write(self, stream: str, text: str) -> None:
        if self.truncated or not text:
            return
        room = OUTPUT_LIMIT - self.shown
        if len(text) > room:
            text, self.truncated = text[:room] + TRUNCATED.format(limit=OUTPUT_LIMIT), True
        self.shown += len(text)
        if self.pending and self.pending[-1][0] == stream:
            self.pending[-1][1] += text
        else:
            self.pending.append([stream, text])
        now = self.clock()
        if now - self.window_started >= WINDOW_S:
            self.flush()
            self.window_started, self.posts_in_window = now, 0
        elif "\n" in text and self.posts_in_window < LINES_AT_ONCE:
            self.flush()

    def flush(self) -> None:
        if self.pending:
            self.post("output", json.dumps({"chunks": self.pending}))
            self.pending = []
            self.posts_in_window += 1


class Stream(io.TextIOBase):
    """sys.stdout or sys.stderr during a run: text goes to the run's Terminal under this stream's name."""

    def __init__(self, terminal: Terminal, name: str):
        self.terminal, self.name = terminal, name

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        self.terminal.write(self.name, str(text))
        return len(text)

    def flush(self) -> None:
        self.terminal.flush()


# ---------------------------------------------------------------- the helpers a snippet finds ready to call


def _numbers(values, name: str) -> list:
    """A sequence of real numbers as a JSON list; nan and infinities become null (a gap in the chart)."""
    values = values.tolist() if hasattr(values, "tolist") else list(values)
    out = []
    for i, v in enumerate(values):
        if hasattr(v, "item"):
            v = v.item()
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise TypeError(f"{name}[{i}] is {v!r}; plot_xy takes real numbers")
        out.append(float(v) if math.isfinite(v) else None)
    return out


def helpers(post) -> dict:
    """plot_xy and show_image for one run, sending what they draw through `post`."""
    drawn = {"plots": 0}

    def count_one() -> None:
        drawn["plots"] += 1
        if drawn["plots"] > MAX_PLOTS:
            raise RuntimeError(f"a run draws at most {MAX_PLOTS} charts and images")

    def plot_xy(xs, ys, title=None):
        """Draw ys against xs as a line with markers, under the output."""
        xs, ys = _numbers(xs, "xs"), _numbers(ys, "ys")
        if len(xs) != len(ys):
            raise ValueError(f"plot_xy: xs has {len(xs)} values and ys has {len(ys)}; they must be as many")
        if len(xs) > MAX_POINTS:
            raise ValueError(f"plot_xy draws at most {MAX_POINTS:,} points, not {len(xs):,}")
        count_one()
        post("plot", json.dumps({"xs": xs, "ys": ys, "title": None if title is None else str(title)}))

    def show_image(array, title=None):
        """Show an H x W (grey), H x W x 3 (RGB) or H x W x 4 (RGBA) array: floats in 0-1, integers in 0-255."""
        import numpy as np

        pixels = np.asarray(array)
        if pixels.ndim == 3 and pixels.shape[2] == 1:
            pixels = pixels[..., 0]
        if not (pixels.ndim == 2 or (pixels.ndim == 3 and pixels.shape[2] in (3, 4))) or 0 in pixels.shape:
            raise ValueError(f"show_image takes an H x W, H x W x 3 or H x W x 4 array, not one of shape "
                             f"{pixels.shape}")
        if max(pixels.shape[:2]) > MAX_IMAGE_SIDE:
            raise ValueError(f"show_image shows at most {MAX_IMAGE_SIDE} x {MAX_IMAGE_SIDE} pixels, "
                             f"not {pixels.shape[:2]}")
        if pixels.dtype.kind in "bf":
            pixels = np.nan_to_num(pixels.astype(float)) * 255.0
        elif pixels.dtype.kind not in "iu":
            raise TypeError(f"show_image takes numbers, not {pixels.dtype}")
        pixels = np.clip(np.rint(pixels), 0, 255).astype(np.uint8)
        if pixels.ndim == 2:
            pixels = np.stack([pixels] * 3, axis=-1)
        if pixels.shape[2] == 3:
            pixels = np.concatenate([pixels, np.full(pixels.shape[:2] + (1,), 255, np.uint8)], axis=-1)
        count_one()
        height, width = pixels.shape[:2]
        post("image", json.dumps({"width": width, "height": height, "title": None if title is None else str(title),
                                  "rgba": base64.b64encode(pixels.tobytes()).decode()}))

    return {"plot_xy": plot_xy, "show_image": show_image}


# ---------------------------------------------------------------- one run


def plain(value):
    """A snippet's value as JSON can carry it: numbers (nan and infinities as the strings "nan", "inf", "-inf"),
    lists of them, strings and booleans; None for anything else."""
    if hasattr(value, "tolist"):  # numpy arrays and scalars
        value = value.tolist()
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, (int, float)):
        return value if math.isfinite(value) else str(float(value))
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return None


def error_text(err: BaseException, compiling: bool) -> str:
    """The error as `python snippet.py` would print it: a syntax error as file, line and caret; anything else as
    a traceback of the snippet's own frames (this module's run() is not the reader's code)."""
    if compiling:
        return "".join(traceback.format_exception_only(type(err), err))
    return "".join(traceback.format_exception(type(err), err, err.__traceback__.tb_next))


def show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """A warning as Python prints it, on the run's stderr (whoever else may be catching warnings, a test runner)."""
    sys.stderr.write(warnings.formatwarning(message, category, filename, lineno, line))


def run(source: str, filename: str, report, post) -> bool:
    """Run `source` as a fresh __main__ with the helpers at hand; post its output, then `done`. True when it ran
    to the end (a sys.exit(0) counts), False when it raised."""
    terminal = Terminal(post)

    def post_after_output(kind: str, text: str) -> None:  # a chart follows the lines printed before it
        terminal.flush()
        post(kind, text)

    namespace = {"__name__": "__main__", "__file__": filename, **helpers(post_after_output)}
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)  # tracebacks quote the code
    saved = sys.stdout, sys.stderr, sys.stdin
    sys.stdout, sys.stderr, sys.stdin = Stream(terminal, "stdout"), Stream(terminal, "stderr"), io.StringIO()
    started, ok, compiling = time.perf_counter(), True, True
    try:
        code = compile(source, filename, "exec")
        compiling = False
        with warnings.catch_warnings():
            warnings.showwarning = show_warning
            exec(code, namespace)  # noqa: S102 - the reader's own code, in the reader's own browser
    except SystemExit as stop:  # as Python does: sys.exit("why") prints why, sys.exit(3) prints nothing
        ok = stop.code in (None, 0)
        if not ok and not isinstance(stop.code, int):
            sys.stderr.write(f"{stop.code}\n")
    except BaseException as err:  # noqa: BLE001 - whatever the reader's code raises is shown, as Python shows it
        ok = False
        sys.stderr.write(error_text(err, compiling))
    finally:
        sys.stdout, sys.stderr, sys.stdin = saved
        terminal.flush()
    values = {str(name): plain(namespace.get(str(name))) for name in report}
    post("done", json.dumps({"ok": ok, "seconds": time.perf_counter() - started, "values": values}))
    return ok
