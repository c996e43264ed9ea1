"""Lifeboat: the fallback backend's routes and schedules.

A routing table only: each view reads its input, calls one thing in
chalicelib, and returns. Errors become HTTP responses in chalicelib.api.errors;
Every route declares its access: `admin=True`, or the token scope it needs
(`scope=`), checked before the view runs.
"""

from chalice import Chalice, Rate

from chalicelib import observability, wiring
from chalicelib.accounts.store import WRITE
from chalicelib.api import fallback
from chalicelib.api.middleware import middleware
from chalicelib.api.requests import (
    CLIENT_API_CONTENT_TYPES,
    FORM,
    authorization,
    client_address,
    form_fields,
    json_body,
    query_param,
    query_params,
    query_values,
    text_body,
)
from chalicelib.api.responses import (
    NO_STORE,
    feed_response,
    image_response,
    instance_domain,
    json_response,
    mastodon_page,
    no_content,
    origin,
    page_response,
    post_created,
)
from chalicelib.api.routing import PUBLIC, mastodon_router, oauth_router, router
from chalicelib.core.clock import remaining_seconds
from chalicelib.core.parsing import flag
from chalicelib.mastodon import first_screen

# The stream's mapping (see stream_changes below). A batch's derived writes
# are one transaction per run of records, so the status items take one write
# per batch, not per post (docs/DESIGN.md, "The stream").
STREAM_ARN_IN_TEMPLATE = "arn:aws:dynamodb:us-east-1:000000000000:table/lifeboat/stream/set-by-scripts-package"
STREAM_BATCH_SIZE = 1000
STREAM_BATCHING_WINDOW_SECONDS = 1

app = Chalice(app_name="lifeboat")
app.register_middleware(middleware, "http")
route = router(app)


# -- posts ---------------------------------------------------------------------


@route("/posts", methods=["POST"], scope=WRITE)
def create_post():
    request = app.current_request
    author = wiring.accounts().author(authorization(request))
    key = request.headers.get("idempotency-key")
    return post_created(wiring.posts().create(author.username, json_body(request), key, author.primary))


@route("/posts/{post_id}", methods=["GET"], scope=PUBLIC)
def get_post(post_id):
    return json_response(wiring.posts().get(post_id).to_public())


@route("/posts/{post_id}", methods=["DELETE"], scope=WRITE)
def delete_post(post_id):
    author = wiring.accounts().author(authorization(app.current_request))
    wiring.posts().delete(author.username, post_id, author.primary)
    return no_content()


# -- timelines and status ---------------------------------------------------------


@route("/users/{username}/posts", methods=["GET"], scope=PUBLIC)
def user_posts(username):
    request = app.current_request
    page = wiring.posts().author_timeline(username, query_param(request, "cursor"), query_param(request, "limit"))
    return json_response(page)


@route("/timeline/public", methods=["GET"], scope=PUBLIC)
def public_timeline():
    request = app.current_request
    return json_response(wiring.posts().public_timeline(query_param(request, "cursor"), query_param(request, "limit")))


@route("/status", methods=["GET"], scope=PUBLIC)
def status():
    return json_response(wiring.recovery_admin().status())


# -- feeds (loaded on the first feed request; feedgen only when one is rendered) ---


@route("/users/{username}/feed.rss", methods=["GET"], scope=PUBLIC)
def user_feed_rss(username):
    return feed_response(wiring.feeds().live(username, "rss", app.current_request.headers))


@route("/users/{username}/feed.atom", methods=["GET"], scope=PUBLIC)
def user_feed_atom(username):
    return feed_response(wiring.feeds().live(username, "atom", app.current_request.headers))


@route("/timeline/public/feed.rss", methods=["GET"], scope=PUBLIC)
def public_feed_rss():
    return feed_response(wiring.feeds().live(None, "rss", app.current_request.headers))


@route("/timeline/public/feed.atom", methods=["GET"], scope=PUBLIC)
def public_feed_atom():
    return feed_response(wiring.feeds().live(None, "atom", app.current_request.headers))


# -- administration --------------------------------------------------------------


@route("/admin/users", methods=["POST"], admin=True)
def create_user():
    request = app.current_request
    user, token = wiring.accounts().create_user(json_body(request))
    location = {"Location": f"/admin/users/{user.username}"}
    return json_response({"username": user.username, "token": token}, 201, location)


@route("/admin/users/{username}", methods=["GET"], admin=True)
def get_user(username):
    return json_response(wiring.accounts().get_user(username).to_public())


@route("/admin/users/{username}/token", methods=["POST"], admin=True)
def rotate_token(username):
    return json_response({"username": username, "token": wiring.accounts().rotate_token(username)}, 201)


@route("/admin/users/{username}/token", methods=["DELETE"], admin=True)
def revoke_token(username):
    wiring.accounts().revoke_token(username)
    return no_content()


@route("/admin/posts/{post_id}", methods=["GET"], admin=True)
def admin_get_post(post_id):
    return json_response(wiring.posts().get_any_state(post_id).to_admin())


@route("/admin/dead-letters", methods=["GET"], admin=True)
def dead_letters():
    request = app.current_request
    page = wiring.recovery_admin().dead_letters(query_param(request, "cursor"), query_param(request, "limit"))
    return json_response(page)


@route("/admin/dead-letters/{post_id}/retry", methods=["POST"], admin=True)
def retry_dead_letter(post_id):
    return json_response(wiring.recovery_admin().retry_dead_letter(post_id))


@route("/admin/replay", methods=["POST"], admin=True)
def replay_now():
    request = app.current_request
    if flag(query_param(request, "dry_run")):
        return json_response(wiring.recovery_admin().replay_plan())
    return json_response(wiring.recovery().replay_now(remaining_seconds(app.lambda_context)))


# -- the contract (docs/openapi.yaml) -----------------------------------------------


@route("/openapi.json", methods=["GET"], scope=PUBLIC)
def openapi_document():
    from chalicelib.api import openapi as openapi_document  # read on the first request only, never at cold start

    return json_response(openapi_document.json_text())


# -- Mastodon client API (docs/DESIGN.md, "Mastodon API") ------------------------------

mastodon_route = mastodon_router(app)


def _me(request) -> str:
    return wiring.accounts().authenticate(authorization(request))


def _status_page(request, page):
    return mastodon_page(request, page.statuses, page.oldest_id if page.has_more else None, page.newest_id)


@mastodon_route("/api/v1/instance", methods=["GET"], scope=PUBLIC)
def mastodon_instance_v1():
    request = app.current_request
    return json_response(wiring.mastodon().instance_v1(instance_domain(request), origin(request)))


@mastodon_route("/api/v2/instance", methods=["GET"], scope=PUBLIC)
def mastodon_instance_v2():
    request = app.current_request
    return json_response(wiring.mastodon().instance_v2(instance_domain(request), origin(request)))


@mastodon_route("/api/v1/accounts/verify_credentials", methods=["GET"], scope="profile")
def mastodon_verify_credentials():
    request = app.current_request
    return json_response(wiring.mastodon().verify_credentials(_me(request), origin(request)))


@mastodon_route("/api/v1/statuses", methods=["POST"], content_types=CLIENT_API_CONTENT_TYPES, scope="write:statuses")
def mastodon_create_status():
    request = app.current_request
    author = wiring.accounts().author(authorization(request))
    key = request.headers.get("idempotency-key")
    form = form_fields(request)
    return json_response(wiring.mastodon().create_status(author.username, form, key, origin(request), author.primary))


@mastodon_route("/api/v1/statuses/{status_id}", methods=["GET"], scope=PUBLIC)
def mastodon_get_status(status_id):
    return json_response(wiring.mastodon().get_status(status_id, origin(app.current_request)))


@mastodon_route(
    "/api/v1/statuses/{status_id}", methods=["DELETE"], content_types=CLIENT_API_CONTENT_TYPES, scope="write:statuses"
)
def mastodon_delete_status(status_id):
    request = app.current_request
    author = wiring.accounts().author(authorization(request))
    return json_response(wiring.mastodon().delete_status(author.username, status_id, origin(request), author.primary))


@mastodon_route("/api/v1/timelines/home", methods=["GET"], scope="read:statuses")
def mastodon_home_timeline():
    request = app.current_request
    page = wiring.mastodon().home_timeline(_me(request), query_params(request), origin(request))
    return _status_page(request, page)


@mastodon_route("/api/v1/timelines/public", methods=["GET"], scope=PUBLIC)
def mastodon_public_timeline():
    request = app.current_request
    return _status_page(request, wiring.mastodon().public_timeline(query_params(request), origin(request)))


@mastodon_route("/api/v1/accounts/lookup", methods=["GET"], scope=PUBLIC)
def mastodon_lookup_account():
    request = app.current_request
    return json_response(wiring.mastodon().lookup(query_param(request, "acct"), origin(request)))


@mastodon_route("/api/v1/accounts/relationships", methods=["GET"], scope="read:follows")
def mastodon_relationships():
    request = app.current_request
    return json_response(wiring.mastodon().relationships(_me(request), query_values(request, "id")))


@mastodon_route("/api/v1/accounts/{account_id}", methods=["GET"], scope=PUBLIC)
def mastodon_account(account_id):
    return json_response(wiring.mastodon().account(account_id, origin(app.current_request)))


@mastodon_route("/api/v1/accounts/{account_id}/statuses", methods=["GET"], scope=PUBLIC)
def mastodon_account_statuses(account_id):
    request = app.current_request
    page = wiring.mastodon().account_statuses(account_id, query_params(request), origin(request))
    return _status_page(request, page)


@mastodon_route("/api/v1/accounts/{account_id}/following", methods=["GET"], scope=PUBLIC)
def mastodon_following(account_id):
    request = app.current_request
    accounts, next_max_id = wiring.mastodon().following(account_id, query_params(request), origin(request))
    return mastodon_page(request, accounts, next_max_id, None)


@mastodon_route(
    "/api/v1/accounts/{account_id}/follow",
    methods=["POST"],
    content_types=CLIENT_API_CONTENT_TYPES,
    scope="write:follows",
)
def mastodon_follow(account_id):
    return json_response(wiring.mastodon().follow(_me(app.current_request), account_id))


@mastodon_route(
    "/api/v1/accounts/{account_id}/unfollow",
    methods=["POST"],
    content_types=CLIENT_API_CONTENT_TYPES,
    scope="write:follows",
)
def mastodon_unfollow(account_id):
    return json_response(wiring.mastodon().unfollow(_me(app.current_request), account_id))


# -- the first screen (chalicelib/mastodon/first_screen.py) ----------------------------


@mastodon_route("/api/v1/preferences", methods=["GET"], scope="read:accounts")
def mastodon_preferences():
    return json_response(first_screen.preferences())


@mastodon_route("/api/v1/markers", methods=["GET"], scope="read:statuses")
def mastodon_markers():
    request = app.current_request
    return json_response(wiring.markers().read(_me(request), query_values(request, "timeline")))


@mastodon_route("/api/v1/markers", methods=["POST"], content_types=CLIENT_API_CONTENT_TYPES, scope="write:statuses")
def mastodon_save_markers():
    request = app.current_request
    return json_response(wiring.markers().save(_me(request), form_fields(request)))


def _notifications_page(request):
    types, excluded = query_values(request, "types"), query_values(request, "exclude_types")
    return wiring.mastodon().notifications(_me(request), query_params(request), types, excluded, origin(request))


@mastodon_route("/api/v1/notifications", methods=["GET"], scope="read:notifications")
def mastodon_notifications():
    request = app.current_request
    page = _notifications_page(request)
    return mastodon_page(request, page.notifications, page.oldest_id if page.has_more else None, page.newest_id)


@mastodon_route("/api/v2/notifications", methods=["GET"], scope="read:notifications")
def mastodon_grouped_notifications():
    request = app.current_request
    page = _notifications_page(request)
    return mastodon_page(request, page.grouped(), page.oldest_id if page.has_more else None, page.newest_id)


def _empty_list():
    return json_response([])


for _path, _scope in first_screen.EMPTY_LISTS.items():
    mastodon_route(_path, methods=["GET"], scope=_scope)(_empty_list)


@route("/.well-known/nodeinfo", methods=["GET"], scope=PUBLIC)
def nodeinfo_links():
    return json_response(first_screen.nodeinfo_links(origin(app.current_request)))


@route("/nodeinfo/2.0", methods=["GET"], scope=PUBLIC)
def nodeinfo():
    return json_response(first_screen.nodeinfo())


@route(first_screen.THUMBNAIL_PATH, methods=["GET"], scope=PUBLIC)
def instance_thumbnail():
    return image_response(first_screen.THUMBNAIL_SVG, first_screen.THUMBNAIL_TYPE)


@route("/admin/users/{username}/following", methods=["POST"], content_types=["text/csv"], admin=True)
def import_following(username):
    return json_response(wiring.mastodon().import_following(username, text_body(app.current_request)))


@route("/admin/users/{username}/upstream-token", methods=["PUT"], admin=True)
def put_upstream_token(username):
    request = app.current_request
    wiring.upstream_credentials().put(username, lambda: json_body(request))
    return no_content()


@route("/admin/users/{username}/upstream-token", methods=["DELETE"], admin=True)
def delete_upstream_token(username):
    wiring.upstream_credentials().delete(username)
    return no_content()


# -- OAuth 2, as Mastodon's (docs/DESIGN.md, "OAuth") ------------------------------------

oauth_route = oauth_router(app)
OAUTH_CONTENT_TYPES = CLIENT_API_CONTENT_TYPES


@mastodon_route("/api/v1/apps", methods=["POST"], content_types=OAUTH_CONTENT_TYPES, scope=PUBLIC)
def oauth_register_app():
    return json_response(wiring.oauth().register_app(form_fields(app.current_request)))


@mastodon_route("/api/v1/apps/verify_credentials", methods=["GET"], scope=PUBLIC)
def oauth_verify_app():
    return json_response(wiring.oauth().verify_app(authorization(app.current_request)))


@route("/oauth/authorize", methods=["GET"], scope=PUBLIC)
def oauth_authorize_page():
    request = app.current_request
    return page_response(wiring.oauth().authorize_page(query_params(request), request.headers.get("cookie")))


@route("/oauth/authorize", methods=["POST"], content_types=[FORM], scope=PUBLIC)  # a browser's form
def oauth_authorize():
    request = app.current_request
    answer = wiring.oauth().authorize(form_fields(request), request.headers.get("cookie"), client_address(request))
    return page_response(answer)


@oauth_route("/oauth/token", methods=["POST"], content_types=OAUTH_CONTENT_TYPES, scope=PUBLIC)
def oauth_token():
    request = app.current_request
    return json_response(wiring.oauth().token(form_fields(request), authorization(request)), headers=NO_STORE)


@oauth_route("/oauth/revoke", methods=["POST"], content_types=OAUTH_CONTENT_TYPES, scope=PUBLIC)
def oauth_revoke():
    request = app.current_request
    return json_response(wiring.oauth().revoke(form_fields(request), authorization(request)))


@oauth_route("/.well-known/oauth-authorization-server", methods=["GET"], scope=PUBLIC)
def oauth_metadata():
    return json_response(wiring.oauth().metadata())


@route("/admin/users/{username}/sign-in-codes", methods=["POST"], admin=True)
def issue_sign_in_code(username):
    return json_response(wiring.oauth().issue_sign_in_code(username), 201, NO_STORE)


# -- unknown paths: 404 in the path's shape (chalicelib/api/fallback.py) -------------------


@route(fallback.CATCH_ALL, methods=fallback.EVERY_METHOD, content_types=fallback.ANY_CONTENT_TYPE, scope=PUBLIC)
def unknown_path():
    return fallback.unknown_path(app.current_request)


# -- schedules -------------------------------------------------------------------


@app.schedule(Rate(1, unit=Rate.MINUTES))
def maintenance(event):
    remaining = remaining_seconds(event.context)
    return observability.run_job("maintenance", lambda: wiring.maintenance().run(remaining).to_dict())


# -- the table's stream: everything derived from posts, off the request path --------------
# The ARN is the template's (scripts/package puts the table's StreamArn in its
# place); locally, devtools/streams.py reads moto's stream and calls this handler.


@app.on_dynamodb_record(
    stream_arn=STREAM_ARN_IN_TEMPLATE,
    batch_size=STREAM_BATCH_SIZE,
    starting_position="TRIM_HORIZON",
    maximum_batching_window_in_seconds=STREAM_BATCHING_WINDOW_SECONDS,
)
def stream_changes(event):
    records = event.to_dict()["Records"]
    return observability.run_job("stream", lambda: wiring.stream_consumer().handle(records).to_dict())
