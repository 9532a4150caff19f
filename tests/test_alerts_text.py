"""The admin alerts' text reads as sentences: a feed's last error, quoted from the source,
is ended with one full stop before "watcherd keeps trying" (it ran on into it before)."""

from __future__ import annotations

import pytest

from watcherd.alerts import AlertBook

T0 = 1_700_000_000.0


@pytest.mark.parametrize(
    "error",
    [
        "bob: Trakt is unavailable (HTTP 503); retrying later may help",
        "bob: Trakt is unavailable (HTTP 503); retrying later may help.",
    ],
    ids=["error-without-full-stop", "error-with-full-stop"],
)
def test_the_last_error_is_a_sentence_of_its_own(error: str) -> None:
    book = AlertBook(after=1, told={})
    book.poll("bob", state="failing", detail=error)

    (notice,) = book.flush(T0).notices

    assert notice.body == (
        "Feeds failing 1 polls in a row: bob. Last error: bob: Trakt is unavailable (HTTP 503);"
        " retrying later may help. watcherd keeps trying; `watcherd state show` lists each"
        " error."
    )
