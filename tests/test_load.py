"""Load: agents asking while an editor publishes, against `suggester serve --prod`.

The short form runs in `make test`; the full form of the issue (50 clients for 60 s) is marked
`long` and runs in `make test-long`. Both print the figures `suggester load-test` prints.
"""

from __future__ import annotations

import pytest

from suggester.evaluation.load import load_test


@pytest.mark.parametrize(("clients", "seconds"), [
    pytest.param(10, 15, marks=pytest.mark.slow, id="short"),
    pytest.param(50, 60, marks=pytest.mark.long, id="full"),
])
def test_no_error_and_no_torn_read_while_publishing(shipped_settings, tmp_path, capsys,
                                                    clients, seconds):
    report = load_test(shipped_settings, clients=clients, seconds=seconds, workers=2,
                       work_dir=tmp_path, data_from=shipped_settings.data_dir)
    with capsys.disabled():
        print("\n" + "\n".join(report.lines()))

    assert report.statuses.keys() == {200}, report.statuses
    assert report.connection_errors == []
    assert report.server_errors == []
    assert report.torn == [], report.torn[:5]
    # Under full load a publish queues behind the agents' requests (~6 s here), so fewer
    # than one every 3 s get through; the run lasts until two, enough to race the readers.
    assert len(report.publishes) >= 2 and report.failed_publishes == []
    # The check saw the edits being served, or it proved nothing.
    assert len(report.edited_versions_cited) >= 2
    assert len(report.samples) >= clients
