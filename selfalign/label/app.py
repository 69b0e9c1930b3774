"""The labelling app: server-rendered pages and the JSON API they use, one code path for both.

Model text is hostile input: templates autoescape everything, no model text is ever marked safe
or rendered as Markdown, and the Content-Security-Policy allows scripts from this server's
static files only (no inline script), so text that looks like HTML or script stays text.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import Body, FastAPI, HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from selfalign.label.answers import BadAnswer, display_order, shown_answer, stored_answer
from selfalign.label.auth import COOKIE, Caller, require
from selfalign.label.db import ItemRow, Labeller
from selfalign.label.project import Project

HERE = Path(__file__).resolve().parent
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "
       "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
HEADERS = {"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff",
           "Referrer-Policy": "no-referrer", "X-Frame-Options": "DENY",
           "Cache-Control": "no-store"}
PLOTS = ("agreement.png", "ai_vs_people.png")  # the only files of the run the app serves


def create_app(project: Project) -> FastAPI:
    app = FastAPI(title="selfalign label", docs_url=None, redoc_url=None, openapi_url=None)
    templates = Jinja2Templates(directory=HERE / "templates")  # autoescapes .html
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    db = project.db
    instructions_html = render_instructions(project.tasks.instructions)

    app.add_middleware(SecurityHeaders)

    @app.get("/healthz")
    def healthz():
        return {"ok": True}

    @app.get("/start")
    def start(token: str = ""):
        labeller = db.labeller_by_token(token) if token else None
        if labeller is None:
            return HTMLResponse("<p>This link is not valid (revoked, or mistyped).</p>", 401)
        response = RedirectResponse("/", status_code=303)  # drops the token from the address bar
        response.set_cookie(COOKIE, db.new_session(labeller), httponly=True, samesite="strict",
                            path="/")
        return response

    @app.get("/", response_class=HTMLResponse)
    def label_page(request: Request):
        who = _page_caller(request, project)
        if isinstance(who, Response):
            return who
        view = next_view(project, who.labeller)
        return templates.TemplateResponse(request, "label.html", {
            "view": view, "csrf": who.csrf, "labeller": who.labeller,
            "instructions": instructions_html})

    @app.get("/api/next")
    def api_next(request: Request):
        who = require(request, db)
        view = next_view(project, who.labeller)
        return Response(status_code=204) if view is None else view

    @app.post("/api/labels", status_code=201)
    def api_label(request: Request, body: dict = Body(...)):
        who = require(request, db)
        return save_label(project, who, body)

    @app.post("/api/undo")
    def api_undo(request: Request):
        who = require(request, db)
        return {"undone": db.undo(who.labeller)}

    @app.get("/api/labels")
    def api_own_labels(request: Request):
        who = require(request, db)
        return {"labeller": who.labeller.pseudonym, "labels": labels_read_back(db, who.labeller)}

    @app.get("/api/report")
    def api_report(request: Request):
        require(request, db, owner=True)
        from selfalign.label.report import build_report
        return build_report(project)

    @app.get("/report", response_class=HTMLResponse)
    def report_page(request: Request):
        who = _page_caller(request, project, owner=True)
        if isinstance(who, Response):
            return who
        from selfalign.label.report import build_report
        return templates.TemplateResponse(request, "report.html",
                                          {"report": build_report(project), "csrf": who.csrf})

    @app.get("/report/plots/{name}")
    def report_plot(request: Request, name: str):
        require(request, db, owner=True)
        path = project.labels_dir / name
        if name not in PLOTS or not path.is_file():
            raise HTTPException(404, "no such plot; run `selfalign label report` first")
        return FileResponse(path, media_type="image/png")

    @app.get("/browse", response_class=HTMLResponse)
    def browse_page(request: Request, principle: str = "", split: str = "", reason: str = "",
                    q: str = "", page: int = 0):
        who = _page_caller(request, project, owner=True)
        if isinstance(who, Response):
            return who
        from selfalign.label.browse import browse
        found = browse(project.run, principle=principle or None, split=split or None,
                       reason=reason or None, text=q or None, page=max(page, 0))
        return templates.TemplateResponse(request, "browse.html", {
            "browse": found, "filters": {"principle": principle, "split": split,
                                         "reason": reason, "q": q}, "csrf": who.csrf})

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, err: HTTPException):
        return JSONResponse({"error": err.detail}, err.status_code, headers=HEADERS)

    return app


def render_instructions(text: str):
    """The owner's Markdown as HTML, raw HTML in it escaped (markdown-it with html off; rich
    installs it). Model text is never passed here: it is always shown as plain text."""
    from markupsafe import Markup, escape

    try:
        from markdown_it import MarkdownIt
    except ImportError:
        return Markup(f"<pre class=\"instructions\">{escape(text)}</pre>")
    return Markup(MarkdownIt("commonmark", {"html": False}).render(text))


class SecurityHeaders:
    """Adds HEADERS to every response (plain ASGI: cheaper than an HTTP middleware per request)."""

    def __init__(self, app):
        self.app = app
        self.raw = [(k.lower().encode(), v.encode()) for k, v in HEADERS.items()]

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def with_headers(message):
            if message["type"] == "http.response.start":
                names = {k for k, _ in self.raw}
                message["headers"] = [(k, v) for k, v in message.get("headers", [])
                                      if k.lower() not in names] + self.raw
            await send(message)
        await self.app(scope, receive, with_headers)


def _page_caller(request: Request, project: Project, owner: bool = False) -> Caller | Response:
    try:
        return require(request, project.db, owner=owner)
    except HTTPException as err:
        return HTMLResponse(f"<!doctype html><title>selfalign label</title><p>{err.status_code}: "
                            "open the link <code>selfalign label add</code> printed for you."
                            "</p>", err.status_code)


# ---------------------------------------------------------------- views (page and API alike)


def next_view(project: Project, labeller: Labeller) -> dict | None:
    item = project.db.next_item(labeller)
    return None if item is None else item_view(project, labeller, item)


def item_view(project: Project, labeller: Labeller, item: ItemRow) -> dict:
    """What the labeller may see of an item: never the AI's label, the principle, the model or
    which reply is the revision."""
    task = project.tasks.task(item.task)
    payload = item.payload
    replies = _shown_replies(task, payload)
    order = display_order(project.db.display_secret, item.id, labeller.pseudonym, len(replies))
    progress = project.db.progress(labeller)
    return {"item": item.id, "task": task.name, "kind": task.kind,
            "question": task.question or (payload.get("question") if task.kind in
                                          ("compare", "rank") else None),
            "conversation": payload["conversation"],
            "replies": [replies[i] for i in order], "flags": list(task.flags),
            "progress": progress}


def labels_read_back(db, labeller: Labeller) -> list[dict]:
    """The labeller's labels as they answered them: in the order each item was shown to them
    (an imported label, never shown, in the order it would be shown)."""
    labels = []
    for label in db.own_labels(labeller):
        display = label["display"] or display_order(db.display_secret, label["item"],
                                                    labeller.pseudonym, label["replies"])
        labels.append({"label": label["label"], "item": label["item"], "task": label["task"],
                       **shown_answer(label["kind"], label["answer"], display),
                       "note": label["note"], "created": label["created"]})
    return labels


def _shown_replies(task, payload: dict) -> list[str]:
    if task.kind in ("compare", "rank"):
        return payload["replies"]
    if task.kind == "flags" and task.target == "prompt":
        return []
    return payload["replies"][:1]  # rate, or flags on the revision


def save_label(project: Project, who: Caller, body: dict) -> dict:
    db = project.db
    item_id = body.get("item")
    if not isinstance(item_id, int):
        raise HTTPException(400, "`item` must be the item id that /api/next gave")
    item = db.item(item_id)
    if item is None:
        raise HTTPException(404, f"no item {item_id}")
    if item.task not in {t.name for t in project.tasks.tasks}:
        raise HTTPException(409, f"task {item.task!r} is no longer in the task file")
    task = project.tasks.task(item.task)
    display = display_order(db.display_secret, item.id, who.labeller.pseudonym,
                            len(_shown_replies(task, item.payload)))
    try:
        answer = stored_answer(task.kind, body.get("answer"), display, task.flags,
                               body.get("rewrite"))
    except BadAnswer as err:
        raise HTTPException(400, str(err)) from None
    note = body.get("note")
    note = note.strip()[:5000] or None if isinstance(note, str) else None
    try:
        label = db.record_label(who.labeller, item.id, answer, display, note, task.version,
                                project.tasks.instructions_sha256)
    except LookupError as err:
        raise HTTPException(409, str(err)) from None
    return {"label": label, "item": item.id}
