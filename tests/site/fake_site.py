"""A stand-in for the parts of a Codabench site that a compute worker calls
(contract section 3), for the site client's integration tests.

Everything it hears is appended, one JSON object a line, to the --record file,
so a test can read it even after killing this server.

  PATCH /api/submissions/<id>/               form fields; 403 unless the secret matches
  POST  /api/upload_submission_scores/<id>/  JSON; 403 unless the secret matches
  GET   /submission_input/<user>/<id>/<secret>/?kind=...   websocket
  PUT   /storage/<name>, GET /storage/<name>  a flat object store

With --tls-cert and --tls-key it serves HTTPS and WSS instead.

A websocket with the wrong secret is refused before the upgrade (403), as
Django Channels does when a consumer closes before accepting, or, with
--ws-mismatch=accept-close, accepted and then closed at once.
"""

import argparse
import json
import os
import ssl

from aiohttp import web, WSMsgType


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--secret", required=True)
    parser.add_argument("--record", required=True)
    parser.add_argument("--storage", required=True)
    parser.add_argument("--ws-mismatch", choices=["reject", "accept-close"], default="reject")
    parser.add_argument("--tls-cert", help="serve HTTPS and WSS with this certificate (PEM)")
    parser.add_argument("--tls-key")
    args = parser.parse_args()
    os.makedirs(args.storage, exist_ok=True)
    record_file = open(args.record, "a", encoding="utf-8")

    def record(**event):
        record_file.write(json.dumps(event) + "\n")
        record_file.flush()

    async def patch_submission(request):
        form = dict(await request.post())
        record(event="patch", id=request.match_info["id"], form=form,
               content_type=request.headers.get("Content-Type", ""))
        if form.get("secret") != args.secret:
            return web.json_response({"detail": "bad secret"}, status=403)
        return web.json_response({"id": int(request.match_info["id"])})

    async def post_scores(request):
        body = await request.json()
        record(event="scores", id=request.match_info["id"], json=body,
               content_type=request.headers.get("Content-Type", ""))
        if body.get("secret") != args.secret:
            return web.json_response({"detail": "bad secret"}, status=403)
        return web.json_response({"ok": True}, status=201)

    async def submission_input(request):
        kind = request.query.get("kind", "")
        secret_ok = request.match_info["secret"] == args.secret
        record(event="connect", kind=kind, host=request.headers.get("Host", ""),
               user=request.match_info["user"], id=request.match_info["id"], secret_ok=secret_ok)
        if not secret_ok and args.ws_mismatch == "reject":
            return web.Response(status=403, text="forbidden")
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        if not secret_ok:
            await ws.close()
            return ws
        async for msg in ws:
            if msg.type == WSMsgType.TEXT:
                record(event="message", kind=kind, data=msg.data)
            elif msg.type == WSMsgType.BINARY:
                record(event="binary", kind=kind, size=len(msg.data))
        record(event="disconnect", kind=kind)
        return ws

    async def put_object(request):
        name = request.match_info["name"]
        path = os.path.join(args.storage, name)
        size = 0
        with open(path, "wb") as out:
            async for chunk in request.content.iter_chunked(65536):
                out.write(chunk)
                size += len(chunk)
        record(event="put", name=name, size=size, query=request.query_string,
               headers={k.lower(): v for k, v in request.headers.items()})
        return web.Response(status=201)

    async def get_object(request):
        path = os.path.join(args.storage, request.match_info["name"])
        if not os.path.isfile(path):
            return web.Response(status=404, text="<Error><Code>NoSuchKey</Code></Error>")
        return web.FileResponse(path)

    app = web.Application(client_max_size=1024 ** 3)
    app.router.add_route("PATCH", "/api/submissions/{id}/", patch_submission)
    app.router.add_post("/api/upload_submission_scores/{id}/", post_scores)
    app.router.add_get("/submission_input/{user}/{id}/{secret}/", submission_input)
    app.router.add_put("/storage/{name}", put_object)
    app.router.add_get("/storage/{name}", get_object)
    tls = None
    if args.tls_cert:
        tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        tls.load_cert_chain(args.tls_cert, args.tls_key)
    web.run_app(app, host="127.0.0.1", port=args.port, ssl_context=tls, print=None, access_log=None)


if __name__ == "__main__":
    main()
