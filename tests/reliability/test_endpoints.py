"""How clients and servers find each other, tried the wrong way: a second server on a taken
Quack port, discovery files that are not to be trusted, and a server that listens beyond
this machine. Real ``jobobs serve`` processes."""

import os
import shutil
import socket

import pytest
from serving import Server, cli, listening, plain_duckdb, wait_status

import jobobs
from jobobs.db import endpoint
from jobobs.model.errors import JobobsError
from jobobs.testing import wait_until

pytestmark = pytest.mark.slow


def ended_or_ready(server: Server) -> int | None:
    """Wait until the server exits or serves; its exit code, or None if it serves."""
    wait_until(lambda: server.process.poll() is not None or os.path.exists(
        endpoint.path_for(server.db)), timeout=60, message="the server exits or serves")
    return server.process.poll()


def still_serves(server: Server) -> None:
    raw = plain_duckdb(f"quack:127.0.0.1:{server.quack_port}", server.token)
    assert raw.execute("FROM remote.query('SELECT 42')").fetchall() == [(42,)]
    with jobobs.connect(server.db) as client:
        job_id = client.submit("jobs:steps", 3, 0.0)
        assert wait_status(client, job_id, "finished", "failed") == "finished"


def test_a_second_server_on_the_same_quack_port_is_refused_and_the_first_serves_on(tmp_path):
    first = Server(str(tmp_path / "first.duckdb")).wait_ready()
    try:
        second = Server(str(tmp_path / "second.duckdb"), quack_port=first.quack_port)
        code = ended_or_ready(second)
        second.stop()
        assert code == 1, second.output()
        assert (f"cannot serve Quack on 127.0.0.1:{first.quack_port}: the port is in use"
                in second.output())
        assert not os.path.exists(endpoint.path_for(second.db))
        still_serves(first)
    finally:
        assert first.stop() == 0, first.output()


def test_a_quack_port_another_program_listens_on_is_refused(tmp_path):
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        server = Server(str(tmp_path / "jobs.duckdb"), quack_port=other.getsockname()[1])
        code = ended_or_ready(server)
        server.stop()
    assert code == 1 and "the port is in use" in server.output(), server.output()


def test_a_discovery_file_is_trusted_only_if_yours_private_and_for_this_database(tmp_path):
    server = Server(str(tmp_path / "jobs.duckdb")).wait_ready()
    path = endpoint.path_for(server.db)
    try:
        os.chmod(path, 0o644)
        with pytest.raises(JobobsError, match="not to be trusted: its mode is 644"):
            jobobs.connect(server.db)
        os.chmod(path, 0o600)
        if os.geteuid() == 0:  # only root can give a file away
            os.chown(path, 65534, -1)
            with pytest.raises(JobobsError, match="belongs to user 65534, not to you"):
                jobobs.connect(server.db)
            os.chown(path, 0, -1)
        copied = str(tmp_path / "copied.duckdb")  # a file that leads to another database
        shutil.copy(path, endpoint.path_for(copied))
        with pytest.raises(JobobsError, match="names another database"):
            jobobs.connect(copied)
        result = cli("list", "--db", copied)
        assert result.returncode == 1 and "not to be trusted" in result.stderr
        assert server.token not in result.stderr
        linked = str(tmp_path / "linked.duckdb")
        os.symlink(path, endpoint.path_for(linked))
        with pytest.raises(JobobsError, match="symbolic link"):
            jobobs.connect(linked)
        still_serves(server)  # the file as the server wrote it is trusted
    finally:
        assert server.stop() == 0, server.output()


def test_serving_every_interface_starts_answers_on_loopback_and_warns(tmp_path):
    server = Server(str(tmp_path / "jobs.duckdb"), "--host", "0.0.0.0").wait_ready()
    try:
        assert listening(server.quack_port) == ["0.0.0.0"]
        still_serves(server)  # on 127.0.0.1, and through the discovery file's 0.0.0.0
        by_name = f"quack:{socket.getfqdn()}:{server.quack_port}"  # as Dask workers reach it
        with jobobs.connect(url=by_name, token=server.token) as client:
            assert len(client.jobs()) == 1
        output = server.output()
        assert "WARNING: jobobs listens on 0.0.0.0" in output and "plain HTTP" in output
        assert "WARNING: no --users" in output
        assert server.token not in output
    finally:
        assert server.stop() == 0, server.output()
