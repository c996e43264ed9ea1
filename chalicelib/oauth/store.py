"""The OAuth server's DynamoDB adapter: apps, authorization codes, access
tokens, sign-in codes and failed sign-in counts (docs/DESIGN.md, "OAuth").

    OAUTHAPP#<client_id>  / APP    an app, its secret as a SHA-256 digest
    OAUTHCODE#<sha256>    / CODE   an authorization code (TTL expires_at)
    TOKEN#<sha256>        / TOKEN  a user's token (the item every route reads)
    APPTOKEN#<sha256>     / TOKEN  a client_credentials token
    SIGNINCODE#<sha256>   / CODE   an admin's one-time sign-in code (TTL)
    RATE#signin#...       / RATE   failed sign-ins in a window (rate_limits)

Codes are taken with one conditional DeleteItem that returns the item: of
two redemptions racing, exactly one gets it.
"""

from __future__ import annotations

from chalicelib.accounts import rate_limits
from chalicelib.aws import dynamo
from chalicelib.aws.clients import unavailable_as_domain_error
from chalicelib.oauth.apps import App
from chalicelib.oauth.codes import AuthorizationCode, SignInCode
from chalicelib.oauth.tokens import OAUTH_SOURCE, AccessToken


class OAuthStore:
    def __init__(self, client, table_name: str) -> None:
        self._client = client
        self._table = table_name

    # -- apps ---------------------------------------------------------------

    def put_app(self, app: App) -> None:
        values = {
            "PK": f"OAUTHAPP#{app.client_id}",
            "SK": "APP",
            "client_secret_sha256": app.client_secret_sha256,
            "name": app.name,
            "website": app.website,
            "redirect_uris": list(app.redirect_uris),
            "scopes": " ".join(sorted(app.scopes)),
            "created_at": app.created_at,
        }
        with unavailable_as_domain_error("put app"):
            self._client.put_item(
                TableName=self._table, Item=dynamo.to_item(values), ConditionExpression="attribute_not_exists(PK)"
            )

    def app(self, client_id: str) -> App | None:
        item = self._get(f"OAUTHAPP#{client_id}", "APP", "get app")
        if item is None:
            return None
        return App(
            client_id,
            item["client_secret_sha256"],
            item["name"],
            item.get("website"),
            tuple(item["redirect_uris"]),
            frozenset(item["scopes"].split()),
            item["created_at"],
        )

    # -- authorization codes ------------------------------------------------

    def put_code(self, code: AuthorizationCode) -> None:
        values = {
            "PK": f"OAUTHCODE#{code.code_sha256}",
            "SK": "CODE",
            "client_id": code.client_id,
            "redirect_uri": code.redirect_uri,
            "scopes": " ".join(sorted(code.scopes)),
            "username": code.username,
            "code_challenge": code.code_challenge,
            "expires_at": code.expires_at,
        }
        with unavailable_as_domain_error("put code"):
            self._client.put_item(TableName=self._table, Item=dynamo.to_item(values))

    def take_code(self, code_sha256: str) -> AuthorizationCode | None:
        """The code, deleted as it is read: None if it is unknown or was taken."""
        item = self._take(f"OAUTHCODE#{code_sha256}", "CODE", "take code")
        if item is None:
            return None
        return AuthorizationCode(
            code_sha256,
            item["client_id"],
            item["redirect_uri"],
            frozenset(item["scopes"].split()),
            item["username"],
            item.get("code_challenge"),
            int(item["expires_at"]),
        )

    # -- access tokens ------------------------------------------------------

    def put_token(self, token: AccessToken) -> None:
        values = {
            "client_id": token.client_id,
            "scopes": " ".join(sorted(token.scopes)),
            "created_at": token.created_at,
        }
        if token.username is None:
            item = {"PK": f"APPTOKEN#{token.token_sha256}", "SK": "TOKEN", **values}
        else:
            item = {
                "PK": f"TOKEN#{token.token_sha256}",
                "SK": "TOKEN",
                **values,
                "username": token.username,
                "source": OAUTH_SOURCE,
            }
        with unavailable_as_domain_error("put token"):
            self._client.put_item(TableName=self._table, Item=dynamo.to_item(item))

    def token(self, token_sha256: str) -> AccessToken | None:
        """An OAuth token (a user's or an app's); None for any other."""
        item = self._get(f"TOKEN#{token_sha256}", "TOKEN", "get token")
        if item is None or item.get("source") != OAUTH_SOURCE:
            item = self._get(f"APPTOKEN#{token_sha256}", "TOKEN", "get token")
        if item is None:
            return None
        return AccessToken(
            token_sha256,
            item["client_id"],
            frozenset(item["scopes"].split()),
            int(item["created_at"]),
            item.get("username"),
        )

    def revoke_token(self, token_sha256: str, client_id: str) -> bool:
        """Delete the OAuth token if `client_id` was issued it; True if one was."""
        for prefix in ("TOKEN#", "APPTOKEN#"):
            try:
                with unavailable_as_domain_error("revoke token"):
                    self._client.delete_item(
                        TableName=self._table,
                        Key=dynamo.key(prefix + token_sha256, "TOKEN"),
                        ConditionExpression="client_id = :client",
                        ExpressionAttributeValues={":client": {"S": client_id}},
                    )
                return True
            except self._client.exceptions.ConditionalCheckFailedException:
                continue
        return False

    # -- sign-in codes ------------------------------------------------------

    def put_sign_in_code(self, code: SignInCode) -> None:
        values = {
            "PK": f"SIGNINCODE#{code.code_sha256}",
            "SK": "CODE",
            "username": code.username,
            "expires_at": code.expires_at,
        }
        with unavailable_as_domain_error("put sign-in code"):
            self._client.put_item(TableName=self._table, Item=dynamo.to_item(values))

    def take_sign_in_code(self, code_sha256: str, username: str) -> SignInCode | None:
        """The code if it is `username`'s, deleted as it is read; else None
        (another user's code stays usable by that user)."""
        try:
            with unavailable_as_domain_error("take sign-in code"):
                response = self._client.delete_item(
                    TableName=self._table,
                    Key=dynamo.key(f"SIGNINCODE#{code_sha256}", "CODE"),
                    ConditionExpression="username = :u",
                    ExpressionAttributeValues={":u": {"S": username}},
                    ReturnValues="ALL_OLD",
                )
        except self._client.exceptions.ConditionalCheckFailedException:
            return None
        item = dynamo.from_item(response.get("Attributes", {}))
        return SignInCode(code_sha256, item["username"], int(item["expires_at"])) if item else None

    # -- failed sign-ins ----------------------------------------------------

    def failures(self, charges: list[rate_limits.Charge]) -> list[int]:
        """The failures counted so far in each charge's window."""
        keys = [charge.key() for charge in charges]
        found = dynamo.batch_get(self._client, self._table, keys, "read sign-in failures")
        counts = {(item["PK"]["S"]): int(item.get("failures", {}).get("N", "0")) for item in found}
        return [counts.get(charge.key()["PK"]["S"], 0) for charge in charges]

    def count_failure(self, charges: list[rate_limits.Charge]) -> None:
        """One more failure in each window (those already full stay full)."""
        for charge in charges:
            item = charge.transact_item(self._table)["Update"]
            try:
                with unavailable_as_domain_error("count sign-in failure"):
                    self._client.update_item(**item)
            except self._client.exceptions.ConditionalCheckFailedException:
                continue

    # -- helpers ------------------------------------------------------------

    def _get(self, pk: str, sk: str, what: str) -> dict | None:
        with unavailable_as_domain_error(what):
            response = self._client.get_item(TableName=self._table, Key=dynamo.key(pk, sk), ConsistentRead=True)
        return dynamo.from_item(response["Item"]) if "Item" in response else None

    def _take(self, pk: str, sk: str, what: str) -> dict | None:
        try:
            with unavailable_as_domain_error(what):
                response = self._client.delete_item(
                    TableName=self._table,
                    Key=dynamo.key(pk, sk),
                    ConditionExpression="attribute_exists(PK)",
                    ReturnValues="ALL_OLD",
                )
        except self._client.exceptions.ConditionalCheckFailedException:
            return None
        return dynamo.from_item(response["Attributes"])
