"""The deployment files under deploy/ stay true: the systemd units run real `peerlift` commands with
real options, the environment file holds real settings, the nginx configuration streams unbuffered;
and, with Debian's nginx, the configuration itself serves two `peerlift serve` processes over TLS."""

from __future__ import annotations

import configparser
import re
import shlex
import shutil
import subprocess
import time
from pathlib import Path

import httpx
import pytest
import typer
from typer.testing import CliRunner

from peerlift import cli
from peerlift.settings import Settings, get_settings
from tests.conftest import IN_CI, PASSWORD, build_world
from tests.scale.processes import PEERLIFT, free_port
from tests.sse import StreamReader

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
UNITS = DEPLOY / "systemd"
NGINX_CONF = DEPLOY / "nginx" / "peerlift.conf"
ENV_EXAMPLE = DEPLOY / "peerlift.env.example"


# --- systemd ----------------------------------------------------------------------------------------

def unit(name: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None, strict=True)
    parser.optionxform = str  # systemd keys are case-sensitive
    parser.read_string((UNITS / name).read_text())
    return parser


def service_units() -> list[str]:
    return sorted(p.name for p in UNITS.glob("*.service"))


def check_command(argv: list[str]):
    """The click command that ``peerlift ARGS...`` names, its arguments parsed as the CLI would
    (an unknown command or option, or a value of the wrong type, raises Typer's usage errors)."""
    assert Path(argv[0]).name == "peerlift", argv
    command = typer.main.get_command(cli.app)
    args, path = list(argv[1:]), ["peerlift"]
    while hasattr(command, "list_commands"):  # a group of commands
        name = args.pop(0)
        sub = command.get_command(typer.Context(command), name)
        assert sub is not None, f"peerlift has no command {' '.join(path + [name])!r}"
        command, path = sub, path + [name]
    context = command.make_context(" ".join(path), args)
    return " ".join(path[1:]), context.params


def test_every_unit_runs_a_real_peerlift_command_with_real_options():
    assert service_units() == ["peerlift-migrate.service", "peerlift-serve@.service", "peerlift-worker.service"]
    ran = {}
    for name in service_units():
        parsed = unit(name)
        exec_start = parsed["Service"]["ExecStart"].replace("%i", "8001")
        command, params = check_command(shlex.split(exec_start))
        ran[name] = (command, params)
        assert parsed["Service"]["EnvironmentFile"] == "/etc/peerlift/peerlift.env"
        assert parsed["Unit"]["PartOf"] == "peerlift.target"
    serve_command, serve = ran["peerlift-serve@.service"]
    assert serve_command == "serve" and serve["port"] == 8001 and serve["host"] == "127.0.0.1"
    assert serve["scheduler"] is False  # the worker unit does the scheduled work
    assert Settings(forwarded_allow_ips=serve["forwarded_allow_ips"]).forwarded_allow_ips == "127.0.0.1,::1"
    assert ran["peerlift-worker.service"][0] == "worker"
    assert ran["peerlift-migrate.service"][0] == "migrate"
    # serving and working wait for the schema; the serve unit stops within systemd's patience
    for name in ("peerlift-serve@.service", "peerlift-worker.service"):
        assert "peerlift-migrate.service" in unit(name)["Unit"]["Requires"].split()
    assert int(unit("peerlift-serve@.service")["Service"]["TimeoutStopSec"]) > cli.SHUTDOWN_GRACE_SECONDS
    assert unit("peerlift.target")["Install"]["WantedBy"] == "multi-user.target"


def test_check_command_refuses_what_peerlift_does_not_have():
    with pytest.raises(AssertionError, match="no command 'peerlift serv'"):
        check_command(["/opt/peerlift/venv/bin/peerlift", "serv"])
    with pytest.raises(AssertionError, match="no command 'peerlift protocol chek'"):
        check_command(["peerlift", "protocol", "chek", "x.yaml"])
    with pytest.raises(Exception, match="No such option: --scheduler-off"):
        check_command(["peerlift", "serve", "--scheduler-off"])
    with pytest.raises(typer.BadParameter):
        check_command(["peerlift", "serve", "--port", "%i"])


def test_the_environment_file_sets_real_settings_for_several_processes(monkeypatch):
    values = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, value = line.partition("=")
            values[name] = value
    fields = {f"PEERLIFT_{name.upper()}" for name in Settings.model_fields}
    assert set(values) <= fields, f"not settings: {set(values) - fields}"
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    settings = Settings()
    assert settings.database_url.startswith("postgresql+psycopg://")
    assert settings.redis_url and settings.secure_cookies and not settings.run_worker
    assert settings.base_url.startswith("https://")


def test_systemd_accepts_the_units(tmp_path):
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed; the units are still parsed by the test above")
    names = []
    for source in [*UNITS.glob("*.service"), *UNITS.glob("*.target")]:
        name = source.name.replace("@.service", "@8001.service")
        (tmp_path / name).write_text(source.read_text().replace("/opt/peerlift/venv/bin/peerlift", PEERLIFT))
        names.append(f"./{name}")
    result = subprocess.run([analyze, "verify", *names], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    problems = [line for line in (result.stdout + result.stderr).splitlines() if "peerlift" in line]
    assert result.returncode == 0 and not problems, result.stdout + result.stderr


# --- nginx ------------------------------------------------------------------------------------------

def parse_nginx(text: str) -> list:
    """nginx's configuration as a tree: [(directive, [args], children or None), ...]."""
    tokens = re.findall(r'"(?:[^"\\]|\\.)*"|\'[^\']*\'|[{};]|[^\s{};"\']+', re.sub(r"#[^\n]*", "", text))

    def block(pos: int) -> tuple[list, int]:
        out, words = [], []
        while pos < len(tokens):
            token = tokens[pos]
            pos += 1
            if token == ";":
                out.append((words[0], words[1:], None))
                words = []
            elif token == "{":
                children, pos = block(pos)
                out.append((words[0], words[1:], children))
                words = []
            elif token == "}":
                return out, pos
            else:
                words.append(token.strip("\"'") if token[0] in "\"'" else token)
        assert not words, f"unfinished directive {words}"
        return out, pos

    return block(0)[0]


def find(tree: list, name: str, *args: str) -> list:
    return [node for node in tree if node[0] == name and (not args or tuple(node[1][:len(args)]) == args)]


def values(tree: list, name: str) -> list[list[str]]:
    return [node[1] for node in find(tree, name)]


def seconds(value: str) -> int:
    number, unit_ = re.fullmatch(r"(\d+)(ms|s|m|h|d)?", value).groups()
    return int(number) * {"ms": 0, "s": 1, None: 1, "m": 60, "h": 3600, "d": 86400}[unit_]


def test_nginx_streams_unbuffered_over_keep_alive_http11_with_forwarded_headers():
    tree = parse_nginx(NGINX_CONF.read_text())
    [upstream] = find(tree, "upstream", "peerlift")
    servers = values(upstream[2], "server")
    assert len(servers) >= 2 and values(upstream[2], "keepalive")
    assert values(upstream[2], "least_conn") == [[]]  # long-lived streams are spread, not taken in turn
    # nginx gives up an idle connection before peerlift closes it: no request is sent into that close
    assert seconds(values(upstream[2], "keepalive_timeout")[0][0]) < cli.KEEP_ALIVE_SECONDS
    https = [s for s in find(tree, "server") if any("ssl" in args for args in values(s[2], "listen"))]
    assert len(https) == 1
    site = https[0][2]
    assert values(site, "ssl_certificate") and values(site, "ssl_certificate_key")
    assert values(site, "proxy_http_version") == [["1.1"]]
    headers = {args[0].lower(): args[1] for args in values(site, "proxy_set_header")}
    assert headers["connection"] == ""  # keep-alive to the processes, not "close"
    assert headers["x-forwarded-for"] == "$remote_addr" and headers["x-forwarded-proto"] == "$scheme"
    assert headers["host"] == "$host"
    assert not [a for a in values(site, "add_header") if a[0].lower() == "strict-transport-security"]  # peerlift's
    [stream] = find(site, "location", "=", "/api/v1/stream")
    inner = stream[2]
    assert values(inner, "proxy_pass") == [["http://peerlift"]]
    assert values(inner, "proxy_buffering") == [["off"]]
    assert values(inner, "proxy_cache") == [["off"]] and values(inner, "gzip") == [["off"]]
    keepalive_seconds = Settings.model_fields["stream_keepalive_seconds"].default
    assert seconds(values(inner, "proxy_read_timeout")[0][0]) > 4 * keepalive_seconds
    # a location that sets its own headers would drop the server's: the stream must not
    assert not values(inner, "proxy_set_header")
    [rest] = find(site, "location", "/")
    assert values(rest[2], "proxy_pass") == [["http://peerlift"]] and not values(rest[2], "proxy_set_header")
    [plain] = [s for s in find(tree, "server") if s is not https[0]]
    assert find(plain[2], "location", "/")[0][2] == [("return", ["301", "https://$host$request_uri"], None)]


def test_the_nginx_parser_sees_a_buffered_stream():
    tree = parse_nginx("server { location = /api/v1/stream { proxy_pass http://peerlift; proxy_buffering on; } }")
    [stream] = find(find(tree, "server")[0][2], "location", "=", "/api/v1/stream")
    assert values(stream[2], "proxy_buffering") == [["on"]]


def test_the_readme_names_only_files_that_exist():
    readme = (ROOT / "README.md").read_text()
    named = set(re.findall(r"deploy/[\w./@-]+[\w@]", readme))
    assert {"deploy/systemd/peerlift-serve@.service", "deploy/systemd/peerlift-worker.service",
            "deploy/nginx/peerlift.conf"} <= named
    assert [path for path in named if not (ROOT / path).exists()] == []


# --- `peerlift serve` and the proxy's headers ----------------------------------------------------------

@pytest.fixture
def uvicorn_calls(monkeypatch):
    import uvicorn

    calls = []
    monkeypatch.setattr(uvicorn, "run", lambda *a, **kw: calls.append(kw))
    # serve sets these in the environment for the app it starts; monkeypatch restores them
    for name in ("PEERLIFT_FORWARDED_ALLOW_IPS", "PEERLIFT_RUN_WORKER"):
        monkeypatch.setenv(name, "")
        monkeypatch.delenv(name)
    monkeypatch.setenv("PEERLIFT_DATABASE_URL", "sqlite:///unused.db")
    get_settings.cache_clear()
    yield calls
    get_settings.cache_clear()


def test_serve_trusts_forwarded_headers_from_the_proxies_it_is_told(uvicorn_calls, monkeypatch):
    runner = CliRunner()
    result = runner.invoke(cli.app, ["serve", "--port", "8123"])
    assert result.exit_code == 0, result.output
    assert uvicorn_calls[-1]["proxy_headers"] is True
    assert uvicorn_calls[-1]["forwarded_allow_ips"] == "127.0.0.1,::1"  # the default: nginx on this host
    assert uvicorn_calls[-1]["timeout_graceful_shutdown"] == cli.SHUTDOWN_GRACE_SECONDS
    assert uvicorn_calls[-1]["timeout_keep_alive"] == cli.KEEP_ALIVE_SECONDS
    get_settings.cache_clear()
    monkeypatch.setenv("PEERLIFT_FORWARDED_ALLOW_IPS", "10.0.0.5, 192.168.7.9/16")
    assert runner.invoke(cli.app, ["serve"]).exit_code == 0
    assert uvicorn_calls[-1]["forwarded_allow_ips"] == "10.0.0.5,192.168.0.0/16"
    get_settings.cache_clear()
    result = runner.invoke(cli.app, ["serve", "--forwarded-allow-ips", "*"])
    assert result.exit_code == 0, result.output
    assert uvicorn_calls[-1]["forwarded_allow_ips"] == "*"


def test_serve_writes_an_access_log_unless_told_not_to(uvicorn_calls, monkeypatch):
    assert CliRunner().invoke(cli.app, ["serve"]).exit_code == 0
    assert uvicorn_calls[-1]["access_log"] is True
    monkeypatch.setenv("PEERLIFT_ACCESS_LOG", "false")  # as deploy/peerlift.env.example, behind nginx
    get_settings.cache_clear()
    assert CliRunner().invoke(cli.app, ["serve"]).exit_code == 0
    assert uvicorn_calls[-1]["access_log"] is False


@pytest.mark.parametrize("value", ["localhost", "10.0.0.300", "", "*,127.0.0.1"])
def test_serve_refuses_a_proxy_list_it_cannot_read(uvicorn_calls, value):
    result = CliRunner().invoke(cli.app, ["serve", "--forwarded-allow-ips", value])
    assert result.exit_code == 2
    assert "PEERLIFT_FORWARDED_ALLOW_IPS" in result.output
    assert uvicorn_calls == []  # nothing started


# --- the shipped nginx configuration in front of two real processes ----------------------------------

def nginx_binary() -> str:
    for candidate in (shutil.which("nginx"), "/usr/sbin/nginx", str(ROOT / ".venv/nginx/usr/sbin/nginx")):
        if candidate and Path(candidate).exists():
            return candidate
    if IN_CI:
        pytest.fail("nginx is required in CI (`make nginx` unpacks Debian's) and was not found")
    pytest.skip("nginx not found: `make nginx` unpacks Debian's into .venv (outside CI)")


def self_signed(tmp_path: Path) -> tuple[Path, Path]:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj",
                    "/CN=peerlift.test", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True, timeout=60)
    return cert, key


def site_for_test(conf: str, ports: list[int], http_port: int, https_port: int, cert: Path, key: Path) -> str:
    """The shipped configuration with this test's addresses, ports and certificate, nothing else."""
    upstreams = "".join(f"    server 127.0.0.1:{p} max_fails=3 fail_timeout=10s;\n" for p in ports)
    conf = re.sub(r"(    server 127\.0\.0\.1:\d+ [^\n]*\n)+", upstreams, conf)
    conf = re.sub(r"\n\s*listen \[::\]:\d+[^\n]*;", "", conf)
    conf = conf.replace("listen 80;", f"listen 127.0.0.1:{http_port};")
    conf = conf.replace("listen 443 ssl http2;", f"listen 127.0.0.1:{https_port} ssl http2;")
    conf = re.sub(r"ssl_certificate\s+\S+;", f"ssl_certificate {cert};", conf)
    conf = re.sub(r"ssl_certificate_key\s+\S+;", f"ssl_certificate_key {key};", conf)
    return conf


def start_nginx(binary: str, tmp_path: Path, site: str) -> subprocess.Popen:
    (tmp_path / "peerlift.conf").write_text(site)
    temp = {name: tmp_path / name for name in ("body", "proxy", "fastcgi", "uwsgi", "scgi")}
    for path in temp.values():
        path.mkdir()
    (tmp_path / "nginx.conf").write_text(
        f"daemon off;\nworker_processes 1;\npid {tmp_path / 'nginx.pid'};\nerror_log {tmp_path / 'error.log'};\n"
        "events { worker_connections 256; }\n"
        "http {\n  access_log off;\n"
        f"  client_body_temp_path {temp['body']};\n  proxy_temp_path {temp['proxy']};\n"
        f"  fastcgi_temp_path {temp['fastcgi']};\n  uwsgi_temp_path {temp['uwsgi']};\n"
        f"  scgi_temp_path {temp['scgi']};\n  include {tmp_path / 'peerlift.conf'};\n}}\n")
    args = [binary, "-p", str(tmp_path), "-e", str(tmp_path / "error.log"), "-c", str(tmp_path / "nginx.conf")]
    checked = subprocess.run([*args, "-t"], capture_output=True, text=True, timeout=30)
    assert checked.returncode == 0, checked.stderr
    return subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def through(port: int, scheme: str = "https", source: str = "127.0.0.2") -> httpx.Client:
    """A client from another loopback address than nginx's own, so forwarded addresses show."""
    transport = httpx.HTTPTransport(local_address=source, verify=False)
    return httpx.Client(base_url=f"{scheme}://127.0.0.1:{port}", transport=transport, timeout=10)


def sign_in(client: httpx.Client, person, **headers) -> httpx.Response:
    response = client.post("/api/v1/auth/login", json={"email": person.email, "password": PASSWORD},
                           headers=headers)
    assert response.status_code == 200, response.text
    client.headers["X-CSRF-Token"] = response.json()["csrf_token"]
    return response


def session_address(client: httpx.Client) -> str:
    [current] = [s for s in client.get("/api/v1/me/sessions").json() if s["current"]]
    return current["ip_address"]


def addresses_of(person) -> list[str]:
    """Where a person's sessions were started from, as stored."""
    from sqlalchemy import select

    from peerlift import db as dbmod
    from peerlift.identity.models import AuthSession

    with dbmod.transaction(write=False) as s:
        return list(s.scalars(select(AuthSession.ip_address).where(AuthSession.user_id == person.id)))


def test_the_shipped_nginx_configuration_serves_two_processes(cluster, tmp_path):
    binary = nginx_binary()
    from peerlift import db as dbmod

    with dbmod.transaction() as s:
        world = build_world(s)
    servers = cluster.servers(2, PEERLIFT_SECURE_COOKIES="true")
    cert, key = self_signed(tmp_path)
    http_port, https_port = free_port(), free_port()
    nginx = start_nginx(binary, tmp_path, site_for_test(NGINX_CONF.read_text(), [s.port for s in servers],
                                                         http_port, https_port, cert, key))
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                httpx.get(f"http://127.0.0.1:{http_port}/", timeout=1)
                break
            except httpx.TransportError:
                assert nginx.poll() is None and time.monotonic() < deadline, (tmp_path / "error.log").read_text()
                time.sleep(0.1)
        with through(http_port, "http") as plain:
            moved = plain.get("/login")
            assert moved.status_code == 301 and moved.headers["location"] == "https://127.0.0.1/login"
        with through(https_port) as alice, through(https_port) as bob:
            # a made-up X-Forwarded-For from the client is replaced by nginx with its real address
            answer = sign_in(alice, world.alice, **{"X-Forwarded-For": "203.0.113.9"})
            assert answer.headers["strict-transport-security"].startswith("max-age=")
            assert "secure" in answer.headers["set-cookie"].lower()
            assert session_address(alice) == "127.0.0.2"
            sign_in(bob, world.bob)
            with StreamReader(bob) as bobs:
                assert bobs.status == 200
                ids = []
                for i in range(6):  # least_conn hands these to both processes
                    created = alice.post(f"/api/v1/circles/{world.circle.id}/posts", json={"body": f"via nginx {i}"})
                    assert created.status_code == 201, created.text
                    ids.append(created.json()["id"])
                got = [bobs.wait_for("post.created", timeout=10).data["post_id"] for _ in ids]
                assert got == ids
                bobs.stop()
        # Straight to a process: forwarded headers count only from the proxies it trusts (127.0.0.1, ::1).
        one = servers[0].port
        with through(one, "http", source="127.0.0.1") as trusted, through(one, "http") as untrusted:
            sign_in(trusted, world.carol, **{"X-Forwarded-For": "198.51.100.4"})
            sign_in(untrusted, world.pat, **{"X-Forwarded-For": "198.51.100.5"})
        # (the cookies are Secure and these clients speak plain http: the database tells)
        assert addresses_of(world.carol) == ["198.51.100.4"]
        assert addresses_of(world.pat) == ["127.0.0.2"]
    finally:
        nginx.terminate()
        nginx.wait(timeout=10)
