"""Twenty labellers at once over 2,000 items: nothing acknowledged is lost or doubled, and no
item is handed to the same labeller twice."""

import asyncio
from collections import Counter

import httpx

from selfalign.label.app import create_app
from selfalign.label.project import open_project

from label_helpers import bearer, synthetic_run, write_tasks

LABELLERS = 20
ITEMS = 2000


def test_twenty_labellers_label_two_thousand_items(tmp_path):
    run = synthetic_run(tmp_path / "run", ITEMS)
    write_tasks(run, "    overlap: 0.1\n")
    project = open_project(run, log=lambda m: None)
    tokens = [project.db.add_labeller(f"l{i}") for i in range(LABELLERS)]
    needed = project.db.conn.execute("SELECT sum(needed) FROM items").fetchone()[0]
    acknowledged, handed = asyncio.run(_label_all(create_app(project), tokens))

    rows = project.db.conn.execute("SELECT id, item, labeller FROM labels").fetchall()
    assert sorted(label for label, _ in acknowledged) == sorted(r[0] for r in rows)
    assert len(rows) == needed and 2000 < needed < 2400
    assert Counter((item, who) for _, item, who in rows).most_common(1)[0][1] == 1
    # Each labeller was handed each item once, and overlap items went to exactly two people.
    for labeller_items in handed.values():
        assert len(labeller_items) == len(set(labeller_items))
    per_item = Counter(item for _, item, _ in rows)
    overlap = {r[0] for r in project.db.conn.execute("SELECT id FROM items WHERE needed=2")}
    assert all(per_item[i] == (2 if i in overlap else 1) for i in per_item)
    assert len(per_item) == ITEMS


async def _label_all(app, tokens):
    acknowledged, handed = [], {t: [] for t in tokens}
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
        async def labeller(token):
            for _ in range(ITEMS):  # bounded: a stuck loop fails instead of hanging
                got = await client.get("/api/next", headers=bearer(token))
                if got.status_code == 204:
                    return
                item = got.json()["item"]
                handed[token].append(item)
                sent = await client.post("/api/labels", json={"item": item, "answer": "a"},
                                         headers=bearer(token))
                assert sent.status_code == 201, sent.text
                acknowledged.append((sent.json()["label"], item))
            raise AssertionError("a labeller never ran out of items")
        await asyncio.gather(*(labeller(t) for t in tokens))
    return acknowledged, handed
