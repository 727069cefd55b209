"""Every legal and every illegal transition, checked by the one function and recorded in a
real database file with its history row."""

import itertools

import pytest

from jobobs import IllegalTransition, Status
from jobobs.db.ledger import Ledger
from jobobs.db.store import Store
from jobobs.model.states import ACTIVE, LABELS, TERMINAL, TRANSITIONS, check_transition

LEGAL = [(a, b) for a, nexts in TRANSITIONS.items() for b in nexts]
ILLEGAL = [(a, b) for a, b in itertools.product(Status, Status) if b not in TRANSITIONS[a]]


def test_the_ten_statuses_and_their_labels():
    assert [s.value for s in Status] == [
        "editing", "queued", "running", "pausing", "paused", "canceling", "canceled",
        "finished", "failed", "shutdown"]
    assert list(LABELS.values()) == [  # as the product names them
        "Editing in progress", "Waiting for execution", "Execution in progress",
        "Pause in progress", "Paused", "Cancellation in progress", "Canceled", "Finished",
        "Finished with error", "Server shutdown in progress"]
    assert len(set(LABELS.values())) == 10
    assert {Status.CANCELED, Status.FINISHED, Status.FAILED} == TERMINAL
    assert not ACTIVE & TERMINAL


def test_every_status_is_reachable_from_editing():
    seen, todo = {Status.EDITING}, [Status.EDITING]
    while todo:
        for nxt in TRANSITIONS[todo.pop()]:
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    assert seen == set(Status)


@pytest.fixture
def ledger(tmp_path):
    store = Store(str(tmp_path / "t.duckdb"))
    yield Ledger(store, clock=lambda: 1_700_000_000.0)
    store.close()


def _job_in(ledger, status):
    row = ledger.create(name="t", kind="python", spec=None, actor="test", queue=False)
    row.set(status=status.value)
    ledger.flush()
    return row.id


@pytest.mark.parametrize(("old", "new"), LEGAL, ids=[f"{a}->{b}" for a, b in LEGAL])
def test_legal_transition_is_written_with_its_history(ledger, old, new):
    job_id = _job_in(ledger, old)
    assert ledger.transition(job_id, new, actor="alice", reason="because") is old
    ledger.flush()
    con = ledger.store.reader()
    assert con.execute("SELECT status FROM jobs WHERE id = ?", [job_id]).fetchone()[0] == new
    last = con.execute(
        """SELECT from_status, to_status, actor, reason, changed_at FROM job_transitions
           WHERE job_id = ? ORDER BY seq DESC LIMIT 1""", [job_id]).fetchone()
    assert last[:4] == (old.value, new.value, "alice", "because")
    assert str(last[4]) == "2023-11-14 22:13:20"


@pytest.mark.parametrize(("old", "new"), ILLEGAL, ids=[f"{a}->{b}" for a, b in ILLEGAL])
def test_illegal_transition_names_the_job_and_both_states(ledger, old, new):
    job_id = _job_in(ledger, old)
    with pytest.raises(IllegalTransition) as raised:
        ledger.transition(job_id, new, actor="alice")
    assert str(raised.value) == f"job {job_id}: cannot go from {old.value!r} to {new.value!r}"
    ledger.flush()
    con = ledger.store.reader()
    assert con.execute("SELECT status FROM jobs WHERE id = ?", [job_id]).fetchone()[0] == old
    assert con.execute("SELECT count(*) FROM job_transitions WHERE job_id = ? AND to_status = ?",
                       [job_id, new.value]).fetchone()[0] == (1 if new is Status.EDITING else 0)


def test_check_transition_accepts_text():
    assert check_transition(1, "running", "pausing") is Status.PAUSING
    with pytest.raises(ValueError):
        check_transition(1, "running", "exploded")
