"""The labels database: one SQLite file in WAL mode, written by one server process.

Every label is one short transaction, committed before the server answers, so a label that was
acknowledged survives the server being killed. Items are handed out through
claims: a labeller holds at most one claimed item; answering it turns the claim into a label,
so an item is never handed to the same labeller twice and never to more labellers than it needs.

The file says which schema it has in `PRAGMA user_version`; opening it runs the migration steps
from that version to this code's, in one transaction, so a file made by an older selfalign keeps
every label. A file from a newer selfalign is refused rather than half understood.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from selfalign.errors import UserError

GOLD_NEEDED = 1_000_000  # a gold item stays open to every labeller
BUSY_MS = 10_000
PROGRESS_CAP = 1000

# Version 1: the tables as they were before versions were kept (such files say user_version 0;
# every statement is IF NOT EXISTS, so the step is harmless on them).
TABLES = """
CREATE TABLE IF NOT EXISTS labellers (
  id INTEGER PRIMARY KEY, name TEXT UNIQUE NOT NULL, pseudonym TEXT UNIQUE NOT NULL,
  token_sha256 TEXT, owner INTEGER NOT NULL DEFAULT 0, revoked INTEGER NOT NULL DEFAULT 0,
  created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS sessions (
  sha256 TEXT PRIMARY KEY, labeller INTEGER NOT NULL REFERENCES labellers(id),
  csrf TEXT NOT NULL, created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS tasks (
  name TEXT PRIMARY KEY, kind TEXT NOT NULL, selection_sha256 TEXT NOT NULL,
  position INTEGER NOT NULL, items INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS items (
  id INTEGER PRIMARY KEY, task TEXT NOT NULL, key TEXT NOT NULL, ord REAL NOT NULL,
  stratum TEXT NOT NULL, gold INTEGER NOT NULL, needed INTEGER NOT NULL, open INTEGER NOT NULL,
  payload TEXT NOT NULL, UNIQUE (task, key));
CREATE INDEX IF NOT EXISTS items_open ON items (task, ord) WHERE open > 0;
CREATE TABLE IF NOT EXISTS claims (
  labeller INTEGER PRIMARY KEY, item INTEGER NOT NULL, shown REAL NOT NULL);
CREATE TABLE IF NOT EXISTS labels (
  id INTEGER PRIMARY KEY, item INTEGER NOT NULL REFERENCES items(id),
  labeller INTEGER NOT NULL REFERENCES labellers(id), answer TEXT NOT NULL,
  display TEXT, note TEXT, seconds REAL, task_version INTEGER, instructions_sha256 TEXT,
  source TEXT NOT NULL DEFAULT 'app', created REAL NOT NULL, UNIQUE (item, labeller));
CREATE INDEX IF NOT EXISTS labels_by_labeller ON labels (labeller, id);
"""
# Version 2: the secret the display order is drawn from. Made once, here, and never sent: a
# labeller who knows the item, their pseudonym and the task file still cannot tell the sides.
SECRETS = "CREATE TABLE IF NOT EXISTS secrets (name TEXT PRIMARY KEY, value TEXT NOT NULL);"
DISPLAY_SECRET = "display"


def _create_tables(conn: sqlite3.Connection) -> None:
    for statement in TABLES.split(";"):
        if statement.strip():
            conn.execute(statement)


def _add_display_secret(conn: sqlite3.Connection) -> None:
    conn.execute(SECRETS)
    conn.execute("INSERT OR IGNORE INTO secrets VALUES (?, ?)",
                 (DISPLAY_SECRET, secrets.token_hex(32)))


MIGRATIONS = (_create_tables, _add_display_secret)  # step n takes version n to n + 1
SCHEMA_VERSION = len(MIGRATIONS)


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class Labeller:
    id: int
    name: str
    pseudonym: str
    owner: bool


@dataclass(frozen=True)
class ItemRow:
    id: int
    task: str
    key: str
    gold: bool
    payload: dict


class LabelDB:
    """One database file; a connection per thread (the app answers from a thread pool)."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._local = threading.local()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._migrate()
        self.display_secret = self.conn.execute(
            "SELECT value FROM secrets WHERE name=?", (DISPLAY_SECRET,)).fetchone()[0]

    def _migrate(self) -> None:
        """Bring the file to SCHEMA_VERSION, one step per version, all in one transaction (two
        processes opening an old file at once: the second finds it migrated)."""
        with self.write() as conn:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise UserError(f"{self.path} has labels schema version {version}; this selfalign "
                                f"reads up to {SCHEMA_VERSION}: upgrade selfalign to open it")
            for step in MIGRATIONS[version:]:
                step(conn)
            if version < SCHEMA_VERSION:
                conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")

    @property
    def conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=BUSY_MS / 1000, isolation_level=None,
                                   check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            # WAL with NORMAL: a commit is in the log file before the server answers, so a killed
            # server loses nothing; only a power cut can lose the last commits (FULL would
            # fsync every label and queue twenty labellers behind the disk).
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute(f"PRAGMA busy_timeout={BUSY_MS}")
            conn.execute("PRAGMA foreign_keys=ON")
            self._local.conn = conn
        return conn

    def write(self):
        """A short write transaction (BEGIN IMMEDIATE: one writer at a time, no upgrade races)."""
        return _Transaction(self.conn)

    # ---------------------------------------------------------------- tasks and items

    def task_state(self, name: str) -> tuple[str, int] | None:
        row = self.conn.execute("SELECT selection_sha256, items FROM tasks WHERE name=?",
                                (name,)).fetchone()
        return None if row is None else (row[0], row[1])

    def labels_of_task(self, name: str) -> int:
        return self.conn.execute("SELECT count(*) FROM labels JOIN items ON items.id=labels.item "
                                 "WHERE items.task=?", (name,)).fetchone()[0]

    def replace_items(self, task, position: int, selection_sha: str, items) -> dict:
        """Put the task's items in place of any it had, in one transaction; their counts."""
        counts = {"items": 0, "overlap": 0, "gold": 0}

        def rows():
            for i in items:
                counts["items"] += 1
                counts["overlap"] += i.overlap
                counts["gold"] += i.gold
                needed = GOLD_NEEDED if i.gold else 2 if i.overlap else 1
                yield (task.name, i.key, i.order, i.stratum, int(i.gold), needed, needed,
                       json.dumps(i.payload, ensure_ascii=False))
        with self.write() as conn:
            conn.execute("DELETE FROM claims WHERE item IN (SELECT id FROM items WHERE task=?)",
                         (task.name,))
            conn.execute("DELETE FROM items WHERE task=?", (task.name,))
            conn.executemany(
                "INSERT INTO items (task, key, ord, stratum, gold, needed, open, payload) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows())
            conn.execute("INSERT OR REPLACE INTO tasks VALUES (?, ?, ?, ?, ?)",
                         (task.name, task.kind, selection_sha, position, counts["items"]))
        return counts

    def set_task_position(self, name: str, position: int) -> None:
        with self.write() as conn:
            conn.execute("UPDATE tasks SET position=? WHERE name=?", (position, name))

    def retire_tasks_except(self, names: list[str]) -> None:
        """Tasks no longer in the task file are not served (their labels stay)."""
        with self.write() as conn:
            marks = ",".join("?" * len(names))
            conn.execute(f"UPDATE tasks SET position=-1 WHERE name NOT IN ({marks})", names)
            retired = (f"SELECT id FROM items WHERE task IN (SELECT name FROM tasks "
                       f"WHERE position<0)")
            conn.execute(f"UPDATE items SET open=open+1 WHERE id IN (SELECT item FROM claims "
                         f"WHERE item IN ({retired}))")
            conn.execute(f"DELETE FROM claims WHERE item IN ({retired})")

    def item(self, item_id: int) -> ItemRow | None:
        row = self.conn.execute("SELECT id, task, key, gold, payload FROM items WHERE id=?",
                                (item_id,)).fetchone()
        return None if row is None else ItemRow(row[0], row[1], row[2], bool(row[3]),
                                                json.loads(row[4]))

    # ---------------------------------------------------------------- labellers and sessions

    def add_labeller(self, name: str, owner: bool = False) -> str:
        """A new labeller; returns their token (only its sha256 is kept)."""
        token = secrets.token_urlsafe(24)
        with self.write() as conn:
            if conn.execute("SELECT 1 FROM labellers WHERE name=?", (name,)).fetchone():
                raise UserError(f"labeller {name!r} exists already; `selfalign label revoke` "
                                "ends their access, or pick another name")
            number = conn.execute("SELECT count(*) FROM labellers").fetchone()[0] + 1
            conn.execute("INSERT INTO labellers (name, pseudonym, token_sha256, owner, created) "
                         "VALUES (?, ?, ?, ?, ?)",
                         (name, f"L{number:03d}", sha256(token), int(owner), time.time()))
        return token

    def labeller_named(self, name: str, create: bool = False) -> Labeller:
        row = self.conn.execute("SELECT id, name, pseudonym, owner FROM labellers WHERE name=?",
                                (name,)).fetchone()
        if row is None and create:
            with self.write() as conn:
                number = conn.execute("SELECT count(*) FROM labellers").fetchone()[0] + 1
                conn.execute("INSERT OR IGNORE INTO labellers (name, pseudonym, created) "
                             "VALUES (?, ?, ?)", (name, f"L{number:03d}", time.time()))
            return self.labeller_named(name)
        if row is None:
            raise UserError(f"no labeller named {name!r}")
        return Labeller(row[0], row[1], row[2], bool(row[3]))

    def revoke(self, name: str) -> None:
        labeller = self.labeller_named(name)
        with self.write() as conn:
            conn.execute("UPDATE labellers SET revoked=1, token_sha256=NULL WHERE id=?",
                         (labeller.id,))
            conn.execute("DELETE FROM sessions WHERE labeller=?", (labeller.id,))
            self._release_claim(conn, labeller.id)

    def active_tokens(self) -> int:
        return self.conn.execute("SELECT count(*) FROM labellers WHERE revoked=0 AND "
                                 "token_sha256 IS NOT NULL").fetchone()[0]

    def labeller_by_token(self, token: str) -> Labeller | None:
        row = self.conn.execute("SELECT id, name, pseudonym, owner FROM labellers WHERE "
                                "token_sha256=? AND revoked=0", (sha256(token),)).fetchone()
        return None if row is None else Labeller(row[0], row[1], row[2], bool(row[3]))

    def new_session(self, labeller: Labeller) -> str:
        session = secrets.token_urlsafe(32)
        with self.write() as conn:
            conn.execute("INSERT INTO sessions VALUES (?, ?, ?, ?)",
                         (sha256(session), labeller.id, secrets.token_urlsafe(24), time.time()))
        return session

    def session(self, session: str) -> tuple[Labeller, str] | None:
        row = self.conn.execute(
            "SELECT l.id, l.name, l.pseudonym, l.owner, s.csrf FROM sessions s JOIN labellers l "
            "ON l.id=s.labeller WHERE s.sha256=? AND l.revoked=0", (sha256(session),)).fetchone()
        return None if row is None else (Labeller(row[0], row[1], row[2], bool(row[3])), row[4])

    # ---------------------------------------------------------------- handing out items

    def next_item(self, labeller: Labeller) -> ItemRow | None:
        """The labeller's claimed item, or a new claim on the first open item they have not
        labelled (tasks in file order, gold first, then seeded order)."""
        row = self.conn.execute("SELECT item FROM claims WHERE labeller=?",
                                (labeller.id,)).fetchone()
        if row is not None:  # the item on their screen: a read, no write lock
            return self.item(row[0])
        with self.write() as conn:
            row = conn.execute("SELECT item FROM claims WHERE labeller=?",
                               (labeller.id,)).fetchone()
            if row is None:
                row = self._open_item(conn, labeller)
                if row is None:
                    return None
                conn.execute("INSERT INTO claims VALUES (?, ?, ?)",
                             (labeller.id, row[0], time.time()))
                conn.execute("UPDATE items SET open=open-1 WHERE id=?", (row[0],))
        return self.item(row[0])

    def _open_item(self, conn, labeller: Labeller):
        for (task,) in conn.execute("SELECT name FROM tasks WHERE position>=0 "
                                    "ORDER BY position").fetchall():
            row = conn.execute(
                "SELECT id, gold FROM items WHERE task=? AND open>0 AND id NOT IN "
                "(SELECT item FROM labels WHERE labeller=?) ORDER BY ord LIMIT 1",
                (task, labeller.id)).fetchone()
            # Gold items are answered by the owner first: others get them once a gold answer exists.
            while row is not None and row[1] and not labeller.owner and not self._gold_answered(
                    conn, row[0]):
                row = conn.execute(
                    "SELECT id, gold FROM items WHERE task=? AND open>0 AND gold=0 AND id NOT IN "
                    "(SELECT item FROM labels WHERE labeller=?) ORDER BY ord LIMIT 1",
                    (task, labeller.id)).fetchone()
            if row is not None:
                return row
        return None

    @staticmethod
    def _gold_answered(conn, item_id: int) -> bool:
        return conn.execute("SELECT 1 FROM labels JOIN labellers ON labellers.id=labels.labeller "
                            "WHERE labels.item=? AND labellers.owner=1", (item_id,)
                            ).fetchone() is not None

    def claimed(self, labeller: Labeller) -> tuple[int, float] | None:
        row = self.conn.execute("SELECT item, shown FROM claims WHERE labeller=?",
                                (labeller.id,)).fetchone()
        return None if row is None else (row[0], row[1])

    def record_label(self, labeller: Labeller, item_id: int, answer, display=None,
                     note: str | None = None, task_version: int | None = None,
                     instructions_sha256: str | None = None) -> int:
        """Store the answer to the labeller's claimed item; answering the same item again
        (a retried request) returns the label already stored."""
        with self.write() as conn:
            done = conn.execute("SELECT id FROM labels WHERE item=? AND labeller=?",
                                (item_id, labeller.id)).fetchone()
            if done:  # a retry, or an imported label: the item is theirs no longer
                conn.execute("DELETE FROM claims WHERE labeller=? AND item=?",
                             (labeller.id, item_id))
                return done[0]
            claim = conn.execute("SELECT item, shown FROM claims WHERE labeller=?",
                                 (labeller.id,)).fetchone()
            if claim is None or claim[0] != item_id:
                raise LookupError("this item is not the one handed to you; fetch /api/next")
            now = time.time()
            cursor = conn.execute(
                "INSERT INTO labels (item, labeller, answer, display, note, seconds, task_version,"
                " instructions_sha256, created) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (item_id, labeller.id, json.dumps(answer), json.dumps(display), note,
                 round(now - claim[1], 3), task_version, instructions_sha256, now))
            conn.execute("DELETE FROM claims WHERE labeller=?", (labeller.id,))
            return cursor.lastrowid

    def undo(self, labeller: Labeller) -> int | None:
        """Delete the labeller's last label and hand its item back to them; None if none."""
        with self.write() as conn:
            last = conn.execute("SELECT id, item FROM labels WHERE labeller=? AND source='app' "
                                "ORDER BY id DESC LIMIT 1", (labeller.id,)).fetchone()
            if last is None:
                return None
            self._release_claim(conn, labeller.id)
            conn.execute("DELETE FROM labels WHERE id=?", (last[0],))
            conn.execute("INSERT INTO claims VALUES (?, ?, ?)", (labeller.id, last[1], time.time()))
            return last[1]

    @staticmethod
    def _release_claim(conn, labeller_id: int) -> None:
        claim = conn.execute("SELECT item FROM claims WHERE labeller=?", (labeller_id,)).fetchone()
        if claim:
            conn.execute("UPDATE items SET open=open+1 WHERE id=?", (claim[0],))
            conn.execute("DELETE FROM claims WHERE labeller=?", (labeller_id,))

    def import_label(self, labeller: Labeller, item_id: int, answer, note: str | None,
                     source: str) -> bool:
        """A label made elsewhere; False when this labeller already labelled the item."""
        with self.write() as conn:
            if conn.execute("SELECT 1 FROM labels WHERE item=? AND labeller=?",
                            (item_id, labeller.id)).fetchone():
                return False
            conn.execute("INSERT INTO labels (item, labeller, answer, note, source, created) "
                         "VALUES (?, ?, ?, ?, ?, ?)",
                         (item_id, labeller.id, json.dumps(answer), note, source, time.time()))
            conn.execute("UPDATE items SET open=max(open-1, 0) WHERE id=?", (item_id,))
            return True

    # ---------------------------------------------------------------- reading labels

    def progress(self, labeller: Labeller, cap: int = PROGRESS_CAP) -> dict:
        """Labels done, and items still open to this labeller (counted up to `cap`, so a
        million-item task costs no more than a small one)."""
        done = self.conn.execute("SELECT count(*) FROM labels WHERE labeller=?",
                                 (labeller.id,)).fetchone()[0]
        claim = self.claimed(labeller)
        on_screen = claim[0] if claim else -1
        left = self.conn.execute(
            "SELECT count(*) FROM (SELECT 1 FROM items WHERE open>0 AND id!=? AND id NOT IN "
            "(SELECT item FROM labels WHERE labeller=?) LIMIT ?)",
            (on_screen, labeller.id, cap)).fetchone()[0] + (claim is not None)
        return {"done": done, "left": left, "left_capped": left >= cap}

    def own_labels(self, labeller: Labeller) -> list[dict]:
        """The labeller's labels in the run's terms, with the order they were shown in (None
        for an imported label) and the task's kind: the app turns them into display terms."""
        rows = self.conn.execute(
            "SELECT labels.id, items.id, items.task, tasks.kind, labels.answer, labels.display, "
            "labels.note, labels.created, json_array_length(items.payload, '$.replies') "
            "FROM labels JOIN items ON items.id=labels.item JOIN tasks ON tasks.name=items.task "
            "WHERE labels.labeller=? ORDER BY labels.id", (labeller.id,)).fetchall()
        return [{"label": r[0], "item": r[1], "task": r[2], "kind": r[3],
                 "answer": json.loads(r[4]), "display": json.loads(r[5]) if r[5] else None,
                 "note": r[6], "created": r[7], "replies": r[8] or 0} for r in rows]

    def all_labels(self, payloads: bool = True) -> list[dict]:
        """Every label with its item and labeller: what the report and the export read. With
        `payloads` False each item's payload stays JSON text (the export parses the ones it
        needs at once, in Arrow)."""
        rows = self.conn.execute(
            "SELECT labels.id, items.id, items.task, items.key, items.gold, items.needed, "
            "items.payload, labellers.name, labellers.pseudonym, labellers.owner, labels.answer, "
            "labels.display, labels.note, labels.seconds, labels.task_version, "
            "labels.instructions_sha256, labels.source FROM labels "
            "JOIN items ON items.id=labels.item JOIN labellers ON labellers.id=labels.labeller "
            "ORDER BY labels.id").fetchall()
        names = ("label", "item", "task", "key", "gold", "needed", "payload", "labeller",
                 "pseudonym", "owner", "answer", "display", "note", "seconds", "task_version",
                 "instructions_sha256", "source")
        labels = []
        for r in rows:
            row = dict(zip(names, r))
            if payloads:
                row["payload"] = json.loads(row["payload"])
            row["answer"] = json.loads(row["answer"])
            row["display"] = json.loads(row["display"]) if row["display"] else None
            row["gold"], row["owner"] = bool(row["gold"]), bool(row["owner"])
            labels.append(row)
        return labels

    def labellers(self) -> list[Labeller]:
        return [Labeller(r[0], r[1], r[2], bool(r[3])) for r in self.conn.execute(
            "SELECT id, name, pseudonym, owner FROM labellers ORDER BY id")]

    def item_by_key(self, task: str, key: str) -> int | None:
        row = self.conn.execute("SELECT id FROM items WHERE task=? AND key=?",
                                (task, key)).fetchone()
        return None if row is None else row[0]


class _Transaction:
    def __init__(self, conn: sqlite3.Connection):
        self.conn = conn

    def __enter__(self) -> sqlite3.Connection:
        self.conn.execute("BEGIN IMMEDIATE")
        return self.conn

    def __exit__(self, kind, value, traceback) -> None:
        self.conn.execute("COMMIT" if kind is None else "ROLLBACK")
