"""Lifeboat: the fallback backend's routes and schedules.

A routing table only: each view reads its input, calls one thing in
chalicelib, and returns. Errors become HTTP responses in chalicelib.web.
"""

from chalice import Chalice, Rate

from chalicelib import observability, web, wiring
from chalicelib.feeds import FeedKind
from chalicelib.web import authorization, json_body, json_response, query_param

app = Chalice(app_name="lifeboat")
app.register_middleware(web.middleware, "http")
route = web.router(app)


# -- posts ---------------------------------------------------------------------


@route("/posts", methods=["POST"])
def create_post():
    request = app.current_request
    author = wiring.accounts().authenticate(authorization(request))
    created = wiring.posts().create(author, json_body(request), request.headers.get("idempotency-key"))
    return web.post_created(created)


@route("/posts/{post_id}", methods=["GET"])
def get_post(post_id):
    return json_response(wiring.posts().get(post_id).to_public())


@route("/posts/{post_id}", methods=["DELETE"])
def delete_post(post_id):
    author = wiring.accounts().authenticate(authorization(app.current_request))
    wiring.posts().delete(author, post_id)
    return web.no_content()


# -- timelines and status ---------------------------------------------------------


@route("/users/{username}/posts", methods=["GET"])
def user_posts(username):
    request = app.current_request
    page = wiring.posts().author_timeline(username, query_param(request, "cursor"), query_param(request, "limit"))
    return json_response(page)


@route("/timeline/public", methods=["GET"])
def public_timeline():
    request = app.current_request
    return json_response(wiring.posts().public_timeline(query_param(request, "cursor"), query_param(request, "limit")))


@route("/status", methods=["GET"])
def status():
    return json_response(wiring.recovery().status())


# -- feeds (feedgen is imported only when one is rendered) ------------------------


@route("/users/{username}/feed.rss", methods=["GET"])
def user_feed_rss(username):
    return web.feed_response(wiring.feeds().live(username, FeedKind.RSS, app.current_request.headers))


@route("/users/{username}/feed.atom", methods=["GET"])
def user_feed_atom(username):
    return web.feed_response(wiring.feeds().live(username, FeedKind.ATOM, app.current_request.headers))


@route("/timeline/public/feed.rss", methods=["GET"])
def public_feed_rss():
    return web.feed_response(wiring.feeds().live(None, FeedKind.RSS, app.current_request.headers))


@route("/timeline/public/feed.atom", methods=["GET"])
def public_feed_atom():
    return web.feed_response(wiring.feeds().live(None, FeedKind.ATOM, app.current_request.headers))


# -- administration --------------------------------------------------------------


@route("/admin/users", methods=["POST"])
def create_user():
    request = app.current_request
    wiring.accounts().require_admin(authorization(request))
    user, token = wiring.accounts().create_user(json_body(request))
    location = {"Location": f"/admin/users/{user.username}"}
    return json_response({"username": user.username, "token": token}, 201, location)


@route("/admin/users/{username}", methods=["GET"])
def get_user(username):
    wiring.accounts().require_admin(authorization(app.current_request))
    return json_response(wiring.accounts().get_user(username).to_public())


@route("/admin/users/{username}/token", methods=["POST"])
def rotate_token(username):
    wiring.accounts().require_admin(authorization(app.current_request))
    return json_response({"username": username, "token": wiring.accounts().rotate_token(username)}, 201)


@route("/admin/users/{username}/token", methods=["DELETE"])
def revoke_token(username):
    wiring.accounts().require_admin(authorization(app.current_request))
    wiring.accounts().revoke_token(username)
    return web.no_content()


@route("/admin/dead-letters", methods=["GET"])
def dead_letters():
    request = app.current_request
    wiring.accounts().require_admin(authorization(request))
    page = wiring.recovery().dead_letters(query_param(request, "cursor"), query_param(request, "limit"))
    return json_response(page)


@route("/admin/dead-letters/{post_id}/retry", methods=["POST"])
def retry_dead_letter(post_id):
    wiring.accounts().require_admin(authorization(app.current_request))
    return json_response(wiring.recovery().retry_dead_letter(post_id))


@route("/admin/replay", methods=["POST"])
def replay_now():
    request = app.current_request
    wiring.accounts().require_admin(authorization(request))
    dry_run = web.flag(query_param(request, "dry_run"))
    report = wiring.recovery().replay_now(web.remaining_seconds(app.lambda_context), dry_run=dry_run)
    return json_response(report)


# -- schedules -------------------------------------------------------------------


@app.schedule(Rate(1, unit=Rate.MINUTES))
def maintenance(event):
    remaining = web.remaining_seconds(event.context)
    return observability.run_job("maintenance", lambda: wiring.maintenance().run(remaining).to_dict())
