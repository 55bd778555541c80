"""static/py/snippet_runtime.py under CPython: what the reader's terminal shows, the helpers, the values a page reads."""

import base64
import json
import sys

import numpy as np
import pytest

from tests.helpers.snippets import run_code, runtime

# ---------------------------------------------------------------- output and errors, as a terminal shows them


def test_stdout_and_stderr_arrive_interleaved_in_the_order_written():
    ran = run_code("import sys\nprint('one')\nprint('two', file=sys.stderr)\nprint('three', end='')\n")
    assert ran.ok
    assert ran.chunks() == [["stdout", "one\n"], ["stderr", "two\n"], ["stdout", "three"]]


def test_the_runtime_error_traceback_shows_the_snippets_frames_and_lines_only():
    ran = run_code("def f(x):\n    return 1 / x\n\nprint('before')\nf(0)\n", filename="walk.py")
    assert not ran.ok
    assert ran.stream("stdout") == "before\n"
    assert ran.stream("stderr") == (
        "Traceback (most recent call last):\n"
        '  File "walk.py", line 5, in <module>\n'
        "    f(0)\n"
        '  File "walk.py", line 2, in f\n'
        "    return 1 / x\n"
        "           ~~^~~\n"
        "ZeroDivisionError: division by zero\n"
    )
    assert "snippet_runtime" not in ran.output


def test_a_syntax_error_is_file_line_caret_and_message_with_no_traceback():
    ran = run_code("x = 1\ny = (x +\n", filename="walk.py")
    assert not ran.ok
    lines = ran.stream("stderr").splitlines()
    assert lines[0] == '  File "walk.py", line 2'
    assert lines[1].strip() == "y = (x +" and lines[2].strip() == "^"
    assert lines[-1] == "SyntaxError: '(' was never closed"
    assert "Traceback" not in ran.output


def test_numpy_warnings_go_to_stderr_with_the_line_that_raised_them():
    ran = run_code("import numpy as np\nprint(np.array([0.0]) / 0)\n", filename="w.py")
    assert ran.ok
    assert ran.stream("stderr").startswith("w.py:2: RuntimeWarning: invalid value encountered in divide\n")
    assert ran.stream("stdout") == "[nan]\n"


@pytest.mark.parametrize(("code", "ok", "stderr"), [
    ("import sys\nsys.exit()", True, ""),
    ("import sys\nsys.exit(0)", True, ""),
    ("import sys\nsys.exit(3)", False, ""),
    ("import sys\nsys.exit('no target given')", False, "no target given\n"),
])
def test_sys_exit_ends_the_run_as_python_would(code, ok, stderr):
    ran = run_code(code)
    assert ran.ok is ok and ran.stream("stderr") == stderr


def test_input_reads_an_empty_stdin_and_the_real_streams_come_back():
    before = sys.stdout, sys.stderr, sys.stdin
    ran = run_code("input('name? ')\n")
    assert not ran.ok and ran.output.endswith("EOFError: EOF when reading a line\n")
    assert (sys.stdout, sys.stderr, sys.stdin) == before


def test_every_run_starts_from_a_fresh_main():
    assert run_code("leftover = 1").ok
    ran = run_code("print(__name__)\nprint(leftover)")
    assert ran.stream("stdout") == "__main__\n" and "NameError: name 'leftover' is not defined" in ran.output


# ---------------------------------------------------------------- how output reaches the page


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def terminal():
    posts, clock = [], Clock()
    return runtime().Terminal(lambda kind, text: posts.append(json.loads(text)["chunks"]), clock), posts, clock


def test_a_finished_line_is_posted_at_once_a_partial_one_waits():
    term, posts, _ = terminal()
    term.write("stdout", "loading")
    assert posts == []
    term.write("stdout", "\n")
    assert posts == [[["stdout", "loading\n"]]]


def test_a_print_loop_is_posted_in_batches_past_the_lines_allowed_at_once():
    rt = runtime()
    term, posts, clock = terminal()
    for i in range(rt.LINES_AT_ONCE + 30):
        term.write("stdout", f"{i}\n")
    assert len(posts) == rt.LINES_AT_ONCE  # the rest waits for the window to pass
    clock.now += rt.WINDOW_S
    term.write("stdout", "last\n")
    assert len(posts) == rt.LINES_AT_ONCE + 1
    assert posts[-1][0][1].startswith(f"{rt.LINES_AT_ONCE}\n") and posts[-1][0][1].endswith("last\n")


def test_output_past_the_limit_is_cut_with_a_note_and_the_run_goes_on():
    rt = runtime()
    ran = run_code("for i in range(100_000):\n    print('x' * 9)\nprint('done')\nresult = i\n", report=["result"])
    assert ran.ok and ran.values == {"result": 99_999}
    assert len(ran.output) == rt.OUTPUT_LIMIT + len(rt.TRUNCATED.format(limit=rt.OUTPUT_LIMIT))
    assert ran.output.endswith("[output truncated: a run shows at most 200,000 characters]\n")
    assert "done" not in ran.output


# ---------------------------------------------------------------- the values a page compares with the server


def test_reported_values_are_plain_json_with_nan_and_infinity_spelled_out():
    ran = run_code("import numpy as np\nv = np.array([1.5, np.nan, -np.inf])\nn = np.int64(3)\nf = print\nb = True\n",
                   report=["v", "n", "f", "b", "missing"])
    assert ran.values == {"v": [1.5, "nan", "-inf"], "n": 3, "f": None, "b": True, "missing": None}


# ---------------------------------------------------------------- the helpers


def test_plot_xy_posts_the_points_after_the_lines_printed_before_it():
    ran = run_code("import numpy as np\nprint('table')\nplot_xy(np.arange(3), [0.5, float('nan'), np.float64(2)], "
                   "title='norms')\n")
    assert ran.ok
    assert [kind for kind, _ in ran.messages] == ["output", "plot", "done"]
    assert ran.posted("plot") == [{"xs": [0.0, 1.0, 2.0], "ys": [0.5, None, 2.0], "title": "norms"}]


@pytest.mark.parametrize(("call", "message"), [
    ("plot_xy([1, 2], [1])", "ValueError: plot_xy: xs has 2 values and ys has 1; they must be as many"),
    ("plot_xy([1, 'a'], [1, 2])", "TypeError: xs[1] is 'a'; plot_xy takes real numbers"),
    ("plot_xy(range(100_001), range(100_001))", "ValueError: plot_xy draws at most 100,000 points, not 100,001"),
    ("for _ in range(21): plot_xy([0], [0])", "RuntimeError: a run draws at most 20 charts and images"),
])
def test_plot_xy_refuses_what_it_cannot_draw_as_a_python_error(call, message):
    ran = run_code(call)
    assert not ran.ok and ran.output.rstrip().endswith(message)


def pixels(image: dict) -> np.ndarray:
    raw = np.frombuffer(base64.b64decode(image["rgba"]), np.uint8)
    return raw.reshape(image["height"], image["width"], 4)


def test_show_image_sends_rgba_pixels_from_grey_floats_rgb_integers_and_booleans():
    ran = run_code("import numpy as np\n"
                   "show_image(np.array([[0.0, 0.5], [1.0, 2.0]]))\n"
                   "show_image(np.full((1, 3, 3), [10, 20, 300]), title='rgb')\n"
                   "show_image(np.eye(2, dtype=bool))\n")
    assert ran.ok
    grey, rgb, mask = ran.posted("image")
    assert (grey["width"], grey["height"]) == (2, 2)
    np.testing.assert_array_equal(pixels(grey)[..., 0], [[0, 128], [255, 255]])  # 0-1 floats, clipped
    np.testing.assert_array_equal(pixels(grey)[..., 3], 255)
    assert rgb["title"] == "rgb" and pixels(rgb)[0, 0].tolist() == [10, 20, 255, 255]
    assert pixels(mask)[..., 1].tolist() == [[255, 0], [0, 255]]


@pytest.mark.parametrize(("call", "message"), [
    ("show_image(np.zeros((2, 2, 2)))", "ValueError: show_image takes an H x W, H x W x 3 or H x W x 4 array, "
                                        "not one of shape (2, 2, 2)"),
    ("show_image(np.zeros((2000, 2)))", "ValueError: show_image shows at most 1024 x 1024 pixels, not (2000, 2)"),
    ("show_image(np.array([['a']]))", "TypeError: show_image takes numbers, not <U1"),
])
def test_show_image_refuses_what_it_cannot_show(call, message):
    ran = run_code("import numpy as np\n" + call)
    assert not ran.ok and ran.output.rstrip().endswith(message)
