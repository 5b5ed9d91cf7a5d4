"""nginx (Debian's, started here on 127.0.0.1 with its own config, workers as
nobody) serves files from a caskfs mount byte for byte, ranges included."""
import os
import subprocess
import time
import urllib.request

import pytest

from conftest import free_port


@pytest.fixture
def nginx(tmp_path):
    procs = []

    def start(root):
        port = free_port()
        conf = tmp_path / "nginx.conf"
        conf.write_text(f"""
daemon off;
worker_processes 2;
user nobody nogroup;
pid {tmp_path}/nginx.pid;
error_log {tmp_path}/error.log;
events {{ worker_connections 256; }}
http {{
    access_log off;
    client_body_temp_path {tmp_path}/body;
    proxy_temp_path {tmp_path}/proxy;
    fastcgi_temp_path {tmp_path}/fastcgi;
    uwsgi_temp_path {tmp_path}/uwsgi;
    scgi_temp_path {tmp_path}/scgi;
    default_type application/octet-stream;
    server {{
        listen 127.0.0.1:{port};
        root {root};
    }}
}}
""")
        p = subprocess.Popen(["nginx", "-c", str(conf), "-p", str(tmp_path)],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        procs.append(p)
        for _ in range(250):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/__probe__", timeout=1)
            except urllib.error.HTTPError:
                return p, port
            except OSError:
                time.sleep(0.02)
        raise RuntimeError("nginx did not start: " + open(tmp_path / "error.log").read())

    yield start
    for p in procs:
        p.terminate()
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def get(port, path, headers=None):
    req = urllib.request.Request(f"http://127.0.0.1:{port}/{path}", headers=headers or {})
    with urllib.request.urlopen(req, timeout=30) as r:
        return r.status, r.headers, r.read()


def test_nginx_serves_the_mount(mount, public_mnt, nginx):
    m = mount(mnt=public_mnt)
    os.makedirs(m.path / "photos")
    os.chmod(m.path / "photos", 0o755)
    files = {}
    for i, size in enumerate([0, 1, 20000, 1 << 20, (3 << 20) + 5]):
        name = f"photos/p{i}.jpg"
        files[name] = os.urandom(size)
        (m.path / name).write_bytes(files[name])
        os.chmod(m.path / name, 0o644)
    proc, port = nginx(m.path)
    workers = subprocess.run(["ps", "-o", "user=", "--ppid", str(proc.pid)],
                             capture_output=True, text=True).stdout.split()
    assert workers and all(u == "nobody" for u in workers), workers
    for name, blob in files.items():
        status, headers, body = get(port, name)
        assert status == 200 and body == blob, name
    big = files["photos/p4.jpg"]
    for rng, want in [("bytes=100-199", big[100:200]), ("bytes=-500", big[-500:]),
                      ("bytes=1048570-1048590", big[1048570:1048591]),
                      ("bytes=3145000-", big[3145000:])]:
        status, headers, body = get(port, "photos/p4.jpg", {"Range": rng})
        assert status == 206 and body == want, rng
        assert headers["Content-Range"].startswith("bytes ")
    with pytest.raises(urllib.error.HTTPError) as ei:
        get(port, "photos/missing.jpg")
    assert ei.value.code == 404
