"""Test helpers: CIFAR-10 files in the official format, and a local HTTP server to download from."""

import contextlib
import hashlib
import http.server
import io
import pickle
import tarfile
import threading

import numpy as np

from nndl.data_utils import CIFAR10_CLASSES, CIFAR10_FILES


def write_batch(path, n=4, seed=0, key_type=bytes, protocol=2):
    """Write a batch file in the official layout (Python-2 style bytes keys by default)."""
    rng = np.random.default_rng(seed)
    k = (lambda s: s.encode()) if key_type is bytes else (lambda s: s)
    batch = {k("batch_label"): k("testing batch"), k("labels"): rng.integers(10, size=n).tolist(),
             k("data"): rng.integers(0, 256, size=(n, 3072), dtype=np.uint8),
             k("filenames"): [k(f"img_{i}.png") for i in range(n)]}
    with open(path, "wb") as f:
        pickle.dump(batch, f, protocol=protocol)
    return batch


def make_archive(tmp_path, files=CIFAR10_FILES, extra=()):
    """A .tar.gz in the official layout with small batches; ``extra`` adds raw TarInfo members."""
    src = tmp_path / "src" / "cifar-10-batches-py"
    src.mkdir(parents=True)
    for i, name in enumerate(files):
        if name == "batches.meta":
            with open(src / name, "wb") as f:
                pickle.dump({b"label_names": [c.encode() for c in CIFAR10_CLASSES], b"num_vis": 3072}, f, protocol=2)
        else:
            write_batch(src / name, n=6, seed=i)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        tar.add(src, arcname="cifar-10-batches-py")
        for info, payload in extra:
            tar.addfile(info, io.BytesIO(payload) if payload is not None else None)
    return buf.getvalue()


class _Handler(http.server.BaseHTTPRequestHandler):
    """Serves ``server.files``; paths starting with /cut/ advertise the full length but send half."""

    def do_GET(self):  # noqa: N802 - the http.server API
        self.server.requests.append(self.path)
        body = self.server.files.get(self.path.removeprefix("/cut"))
        if body is None:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body[: len(body) // 2] if self.path.startswith("/cut/") else body)

    def log_message(self, *args):
        pass


@contextlib.contextmanager
def serve():
    """A local HTTP server on 127.0.0.1 in a thread; put bytes in ``server.files[path]``."""
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.files, httpd.requests = {}, []
    httpd.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield httpd
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


def md5(data):
    return hashlib.md5(data).hexdigest()
