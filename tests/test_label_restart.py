"""The real server (`selfalign label serve`) killed with SIGKILL mid-session and started again:
every acknowledged label is there, as it was sent, and labelling goes on where it stopped."""

import signal

import httpx

from label_helpers import bearer, free_port, start_server, synthetic_run, write_tasks

SENT = ("a", "b", "tie", "skip", "b", "a")


def test_labels_survive_sigkill_and_labelling_resumes(tmp_path):
    from selfalign.label.project import open_project

    run = synthetic_run(tmp_path / "run", 40)
    write_tasks(run)
    token = open_project(run, log=lambda m: None).db.add_labeller("pat")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = start_server(run, port)
    acknowledged, sent, shown = [], {}, {}
    try:
        with httpx.Client(base_url=base, headers=bearer(token), timeout=10) as client:
            for n in range(15):
                view = client.get("/api/next").json()
                item, answer = view["item"], SENT[n % len(SENT)]
                shown[item], sent[item] = view["replies"], (answer, f"note {n}")
                ack = client.post("/api/labels", json={"item": item, "answer": answer,
                                                       "note": f"note {n}"})
                assert ack.status_code == 201
                acknowledged.append(ack.json()["item"])
            shown_before_kill = client.get("/api/next").json()["item"]
    finally:
        server.send_signal(signal.SIGKILL)
        server.wait(10)
    server = start_server(run, port)
    try:
        with httpx.Client(base_url=base, headers=bearer(token), timeout=10) as client:
            labels = client.get("/api/labels").json()["labels"]
            assert [l["item"] for l in labels] == acknowledged
            assert {l["item"]: (l["answer"], l["note"]) for l in labels} == sent
            # The item on screen at the kill is the one handed out again; then new ones follow.
            assert client.get("/api/next").json()["item"] == shown_before_kill
            assert client.post("/api/labels", json={"item": shown_before_kill,
                                                    "answer": "a"}).status_code == 201
            following = client.get("/api/next").json()["item"]
            assert following not in acknowledged + [shown_before_kill]
    finally:
        server.terminate()
        server.wait(10)
    # Stored in the run's terms: "a" and "b" name the reply that was shown there.
    stored = {l["item"]: l for l in open_project(run, log=lambda m: None).db.all_labels()}
    for item, (answer, note) in sent.items():
        replies = stored[item]["payload"]["replies"]
        expected = ({"preferred": replies.index(shown[item]["ab".index(answer)])}
                    if answer in ("a", "b") else {answer: True})
        assert (stored[item]["answer"], stored[item]["note"]) == (expected, note), item
