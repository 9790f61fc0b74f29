#!/usr/bin/env python3
"""A test-only ClickHouse HTTP front over chDB (current ClickHouse in process).

No current ClickHouse server installs on our machines, but the `chdb` package
embeds the current engine. This speaks the part of ClickHouse's HTTP interface
that the Rust `clickhouse` crate (0.15) uses as `store` uses it, so the test
suite runs the store's SQL on the current engine too (`scripts/with-chdb.sh`):

- `GET /ping` answers `Ok.`;
- a statement comes in the body, or in the `query` URL parameter with the
  rows of an `INSERT ... FORMAT RowBinary` in the body (plain or chunked);
- `database` is the statement's current database, `default_format` its output
  format; other URL parameters are settings for that statement only;
- an insert's rows are written to a temporary file and inserted with
  `INSERT INTO t (cols) SELECT * FROM file(path, 'RowBinary', structure)`,
  the structure being the listed columns' types from `DESCRIBE TABLE`;
- a RowBinary answer (`default_format=RowBinary`, what the crate's fetches
  ask for) is refused if a column is `Nullable`: the store reads no
  `Nullable` column, and RowBinary read without validation (as the store
  reads it) takes the null flag for data, so a type that is `Nullable` on
  current releases only (a scalar subquery's) would be read a byte off
  instead of failing. chDB answers in `RowBinaryWithNamesAndTypes`; the front
  checks the types and sends the rows;
- an error is HTTP 500 with ClickHouse's `Code: N. DB::Exception: ...` text
  and the `X-ClickHouse-Exception-Code` header.

Not spoken: ClickHouse's compressed block format (`decompress=1`, what the
crate sends with LZ4 on): run the store with `clickhouse_compression = "none"`.
Nor authentication, sessions, query parameters or progress headers.

One chDB session holds every database, its data in a temporary directory;
statements run one at a time under a lock. Usage:

    chdb-server.py [--port-file FILE]

It listens on 127.0.0.1 on a free port and prints `http://127.0.0.1:PORT`
(and writes it to FILE), then serves until SIGTERM or SIGINT.
"""

import argparse
import http.server
import os
import re
import shutil
import signal
import socketserver
import sys
import tempfile
import threading
import urllib.parse

# chDB reads ./config.xml from its working directory when imported, so it
# starts in a clean one of its own.
WORK = tempfile.mkdtemp(prefix="throughline-chdb.")
os.chdir(WORK)
from chdb import session as chdb_session  # noqa: E402

# URL parameters that are not settings of the statement.
NOT_SETTINGS = {
    "query",
    "database",
    "default_format",
    "compress",
    "decompress",
    "session_id",
    "session_timeout",
    "query_id",
    "role",
    "user",
    "password",
    "wait_end_of_query",
    "send_progress_in_http_headers",
}

INSERT_RE = re.compile(
    r"^\s*INSERT\s+INTO\s+(?P<table>[`\w.]+)\s*\((?P<cols>[^)]*)\)\s*FORMAT\s+RowBinary\s*$",
    re.IGNORECASE | re.DOTALL,
)
CODE_RE = re.compile(r"Code: (\d+)")


def unquote(name):
    name = name.strip()
    if name.startswith("`") and name.endswith("`"):
        return name[1:-1].replace("``", "`")
    return name


def quote(name):
    return "`" + name.replace("`", "``") + "`"


def varint(data, at):
    value = shift = 0
    while True:
        byte = data[at]
        at += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return value, at


def plain_row_binary(sql, data):
    """The rows of a `RowBinaryWithNamesAndTypes` answer, refused if a
    column is `Nullable` (see the module's doc)."""
    if not data:
        return data
    count, at = varint(data, 0)
    texts = []
    for _ in range(2 * count):
        length, at = varint(data, at)
        texts.append(data[at : at + length].decode())
        at += length
    names, types = texts[:count], texts[count:]
    for name, type_ in zip(names, types):
        if "Nullable(" in type_:
            raise ValueError(
                f"Code: 53. DB::Exception: column `{name}` of this answer is {type_}; "
                "the store reads no Nullable column, and RowBinary without validation "
                "would read it a byte off (wrap it in ifNull, or fix the query): "
                f"{' '.join(sql.split())[:300]}. (TYPE_MISMATCH)"
            )
    return data[at:]


class Engine:
    """One chDB session; every statement under one lock."""

    def __init__(self, data_dir):
        self.lock = threading.Lock()
        self.session = chdb_session.Session(data_dir)
        self.files = tempfile.mkdtemp(prefix="rows.", dir=WORK)
        self.counter = 0

    def run(self, sql, database, settings, fmt):
        with self.lock:
            self.session.query(f"USE {quote(database or 'default')}")
            restore = []
            try:
                for name, value in settings.items():
                    if not re.fullmatch(r"\w+", name):
                        raise ValueError(f"Code: 115. DB::Exception: Unknown setting {name}")
                    old = self.session.query(
                        f"SELECT value FROM system.settings WHERE name = '{name}'", "TabSeparated"
                    ).bytes()
                    if not old:
                        raise ValueError(f"Code: 115. DB::Exception: Unknown setting {name}")
                    restore.append((name, old.decode().rstrip("\n")))
                    self.session.query(f"SET {name} = '{value}'")
                if fmt == "RowBinary":
                    return plain_row_binary(
                        sql, bytes(self.session.query(sql, "RowBinaryWithNamesAndTypes").bytes())
                    )
                return bytes(self.session.query(sql, fmt).bytes())
            finally:
                for name, old in restore:
                    self.session.query(f"SET {name} = '{old}'")

    def insert(self, match, rows, database, settings):
        table = match.group("table")
        parts = [unquote(p) for p in re.findall(r"`(?:[^`]|``)*`|[^.]+", table)]
        if len(parts) == 1:
            parts = [database or "default"] + parts
        target = ".".join(quote(p) for p in parts)
        columns = [unquote(c) for c in match.group("cols").split(",") if c.strip()]
        if not rows:
            return b""
        with self.lock:
            described = self.session.query(f"DESCRIBE TABLE {target}", "TabSeparated").bytes()
        types = {}
        for line in described.decode().splitlines():
            fields = line.split("\t")
            types[fields[0]] = fields[1]
        missing = [c for c in columns if c not in types]
        if missing:
            raise ValueError(
                f"Code: 16. DB::Exception: No such column {missing[0]} in table {target}. (NO_SUCH_COLUMN_IN_TABLE)"
            )
        structure = ", ".join(f"{quote(c)} {types[c]}" for c in columns)
        with self.lock:
            self.counter += 1
            path = os.path.join(self.files, f"{self.counter}.bin")
        with open(path, "wb") as f:
            f.write(rows)
        try:
            sql = (
                f"INSERT INTO {target} ({', '.join(quote(c) for c in columns)}) "
                f"SELECT * FROM file('{path}', 'RowBinary', '{structure.replace(chr(39), chr(92) + chr(39))}')"
            )
            return self.run(sql, database, settings, "TabSeparated")
        finally:
            os.unlink(path)


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Idle keep-alive connections close after this (ClickHouse's packaged
    # config: 3 s; the store's pool lets go after 2 s).
    timeout = 3
    engine = None

    def log_message(self, format, *args):  # noqa: A002 - the base class's name
        if os.environ.get("CHDB_SERVER_LOG"):
            sys.stderr.write("chdb-server: " + (format % args) + "\n")

    def answer(self, status, body, headers=()):
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def read_body(self):
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def do_GET(self):
        url = urllib.parse.urlsplit(self.path)
        if url.path in ("/ping", "/") and "query" not in url.query:
            self.answer(200, b"Ok.\n", [("Content-Type", "text/plain; charset=UTF-8")])
            return
        self.statement(b"")

    def do_POST(self):
        self.statement(self.read_body())

    def statement(self, body):
        params = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(self.path).query, keep_blank_values=True))
        database = params.get("database")
        fmt = params.get("default_format") or "TabSeparated"
        settings = {k: v for k, v in params.items() if k not in NOT_SETTINGS and not k.startswith("param_")}
        try:
            if params.get("decompress") == "1" or params.get("compress") == "1":
                raise ValueError(
                    "Code: 1. DB::Exception: chdb-server speaks no compressed block format; "
                    "set clickhouse_compression = \"none\". (UNSUPPORTED_METHOD)"
                )
            if "query" in params:
                sql, rows = params["query"], body
            else:
                sql, rows = body.decode("utf-8"), b""
            match = INSERT_RE.match(sql)
            if match:
                out = self.engine.insert(match, rows, database, settings)
            else:
                if rows:
                    sql = sql + "\n" + rows.decode("utf-8")
                out = self.engine.run(sql, database, settings, fmt)
        except Exception as error:  # chDB's errors carry ClickHouse's text
            text = str(error)
            if "DB::Exception" not in text:
                text = f"Code: 1001. DB::Exception: {text}. (STD_EXCEPTION)"
            code = CODE_RE.search(text)
            self.answer(
                500,
                (text.rstrip("\n") + "\n").encode(),
                [("X-ClickHouse-Exception-Code", code.group(1) if code else "1001")],
            )
            return
        self.answer(200, out, [("Content-Type", "application/octet-stream")])


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port-file", help="write the URL here once listening")
    args = parser.parse_args()
    Handler.engine = Engine(os.path.join(WORK, "data"))
    server = Server(("127.0.0.1", 0), Handler)
    url = f"http://127.0.0.1:{server.server_address[1]}"

    def stop(*_):
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    if args.port_file:
        with open(args.port_file + ".tmp", "w") as f:
            f.write(url + "\n")
        os.replace(args.port_file + ".tmp", args.port_file)
    print(url, flush=True)
    try:
        server.serve_forever()
    finally:
        server.server_close()
        # Closed first: chDB writes its data directory out when it closes.
        with Handler.engine.lock:
            Handler.engine.session.close()
        shutil.rmtree(WORK, ignore_errors=True)


if __name__ == "__main__":
    main()
