"""No input a client or an upstream can send costs more than linear time in its size (issue 10,
item 8). The cases are ``bench/parse.py``'s: 64 KiB heads built around inner whitespace, many tiny
fields, long chunk extensions, long lists, many cookies. The hand-written answer parser took
seconds on 16,000 inner spaces (quadratic regex backtracking, holding the GIL).

Each case is timed at 16 and 64 KiB, best of a few runs: a 64 KiB parse must stay under a bound
far above what linear code needs here (milliseconds), and grow less than 3x the size ratio
(quadratic code grows by its square, 16x). 16 KiB, not smaller: the proxy remembers 512 header
names, and past that a name costs a little more, a step that a smaller start would read as growth.
"""

from __future__ import annotations

import pytest

from bench.parse import KiB, answer_cases, best_of, client_cases, client_gate, parse_answer

SMALL, LARGE = 16 * KiB, 64 * KiB
BOUND_SECONDS = 0.25
MAX_GROWTH = 3 * LARGE / SMALL
ROUNDS = 5


def assert_linear(name: str, small: float, large: float) -> None:
    assert large < BOUND_SECONDS, f"{name}: {large * 1e3:.1f} ms for 64 KiB"
    # Below a millisecond the fixed cost dominates and the ratio says nothing.
    if large > 1e-3:
        assert large / small < MAX_GROWTH, f"{name}: {large / small:.0f}x from 16 to 64 KiB"


@pytest.mark.parametrize("name", list(answer_cases(SMALL)))
def test_upstream_answer_parsing_is_linear(name) -> None:
    small = best_of(ROUNDS, lambda: parse_answer(answer_cases(SMALL)[name]))
    large_answer = answer_cases(LARGE)[name]
    assert len(large_answer) > 60 * KiB
    large = best_of(ROUNDS, lambda: parse_answer(large_answer))
    assert_linear(name, small, large)


@pytest.fixture(scope="module")
def call():
    return client_gate()


@pytest.mark.parametrize("name", list(client_cases(SMALL)))
def test_client_request_handling_is_linear(call, name) -> None:
    small_environ, large_environ = client_cases(SMALL)[name], client_cases(LARGE)[name]
    small = best_of(ROUNDS, lambda: call(dict(small_environ)))
    large = best_of(ROUNDS, lambda: call(dict(large_environ)))
    assert_linear(name, small, large)
