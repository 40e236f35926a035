"""A small synchronous client of a node's ``/api/v1/tokens`` routes (CLI, demo, bench).

Writes wait for ``committed`` by default. A problem+json answer becomes a
``TokensApiError`` carrying the problem's ``code`` (the violated rule, for a refusal)
and, for a refused transaction, its ``tx_id`` (and ``message``, the carried message as the
problem names it, when the operation carried one).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import httpx

from charter.errors import CharterError

DEFAULT_TIMEOUT = 30.0


class TokensApiError(CharterError):
    """The node answered an error; ``code`` is the problem's code."""

    code = "tokens.api"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        tx_id: str | None = None,
        carried: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(message, code=code)
        self.tx_id = tx_id
        self.carried = dict(carried) if carried is not None else None
        """The carried message as the problem names it (``id``, ``state``, ...)."""


class TokensClient:
    def __init__(
        self, base_url: str, client: httpx.Client | None = None, timeout: float = DEFAULT_TIMEOUT
    ) -> None:
        self.base = base_url.rstrip("/") + "/api/v1/tokens"
        self.http = client or httpx.Client()
        self.timeout = timeout

    def _answer(self, r: httpx.Response) -> Any:
        if r.status_code >= 400:
            try:
                doc = r.json()
            except ValueError:
                raise TokensApiError(f"HTTP {r.status_code} from {r.url}") from None
            code = doc.get("code") if isinstance(doc, dict) else None
            detail = doc.get("detail") if isinstance(doc, dict) else None
            tx_id = doc.get("tx_id") if isinstance(doc, dict) else None
            carried = doc.get("message") if isinstance(doc, dict) else None
            raise TokensApiError(
                str(detail or f"HTTP {r.status_code}"),
                code=code or "tokens.api",
                tx_id=tx_id,
                carried=carried if isinstance(carried, dict) else None,
            )
        return r.json()

    def _post(self, path: str, body: Mapping[str, Any], wait: str) -> dict[str, Any]:
        try:
            r = self.http.post(
                self.base + path, json=dict(body), params={"wait": wait}, timeout=self.timeout
            )
        except httpx.HTTPError as exc:
            raise TokensApiError(
                f"cannot reach {self.base}: {exc}", code="tokens.api.unreachable"
            ) from None
        doc: dict[str, Any] = self._answer(r)
        return doc

    def _get(self, path: str, params: Mapping[str, Any]) -> Any:
        query = {k: v for k, v in params.items() if v is not None}
        try:
            r = self.http.get(self.base + path, params=query, timeout=self.timeout)
        except httpx.HTTPError as exc:
            raise TokensApiError(
                f"cannot reach {self.base}: {exc}", code="tokens.api.unreachable"
            ) from None
        return self._answer(r)

    # -- writes -------------------------------------------------------------------------

    @staticmethod
    def message_body(
        topic: str,
        values: Sequence[Any],
        *,
        private_to: Sequence[str] = (),
        tag: str = "",
    ) -> dict[str, Any]:
        """A message for a token operation to carry: private to ``private_to`` (and this
        node's member), or a broadcast; one data item per JSON value."""
        header: dict[str, Any] = {"topic": topic}
        if tag:
            header["tag"] = tag
        body: dict[str, Any] = {"header": header, "data": [{"value": v} for v in values]}
        if private_to:
            body["group"] = {"members": list(private_to)}
        return body

    def create_pool(
        self,
        name: str,
        type: str = "fungible",
        decimals: int = 0,
        *,
        max_supply: int | None = None,
        mint_policy: str = "creator",
        minters: Sequence[str] = (),
        wait: str = "committed",
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"name": name, "type": type, "decimals": decimals}
        if max_supply is not None:
            body["max_supply"] = str(max_supply)
        if mint_policy != "creator" or minters:
            body["mint_policy"] = mint_policy
            body["minters"] = list(minters)
        return self._post("/pools", body, wait)

    def mint(
        self,
        pool: str,
        to: str,
        amount: int,
        *,
        token_id: str = "",
        uri: str = "",
        message: Mapping[str, Any] | None = None,
        wait: str = "committed",
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"pool": pool, "to": to, "amount": str(amount)}
        if token_id:
            body["token_id"] = token_id
        if uri:
            body["uri"] = uri
        if message is not None:
            body["message"] = dict(message)
        return self._post("/mint", body, wait)

    def burn(
        self,
        pool: str,
        from_: str,
        amount: int,
        *,
        token_id: str = "",
        message: Mapping[str, Any] | None = None,
        wait: str = "committed",
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"pool": pool, "from": from_, "amount": str(amount)}
        if token_id:
            body["token_id"] = token_id
        if message is not None:
            body["message"] = dict(message)
        return self._post("/burn", body, wait)

    @staticmethod
    def transfer_body(
        pool: str,
        from_: str,
        to: str,
        amount: int,
        *,
        token_id: str = "",
        operator: str = "",
        pin: bytes = b"",
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"pool": pool, "from": from_, "to": to, "amount": str(amount)}
        if token_id:
            body["token_id"] = token_id
        if operator:
            body["operator"] = operator
        if pin:
            body["pin"] = pin.hex()
        return body

    def transfer(
        self,
        pool: str,
        from_: str,
        to: str,
        amount: int,
        *,
        token_id: str = "",
        operator: str = "",
        pin: bytes = b"",
        message: Mapping[str, Any] | None = None,
        wait: str = "committed",
    ) -> dict[str, Any]:
        """One transfer; with ``message`` (``message_body``), the message is confirmed with
        it or fails with it, and the answer names it under ``message``."""
        body = self.transfer_body(
            pool, from_, to, amount, token_id=token_id, operator=operator, pin=pin
        )
        if message is not None:
            body["message"] = dict(message)
        return self._post("/transfers", body, wait)

    def transfer_batch(
        self, transfers: Sequence[Mapping[str, Any]], *, wait: str = "committed"
    ) -> dict[str, Any]:
        return self._post("/transfers/batch", {"transfers": [dict(t) for t in transfers]}, wait)

    def approve(
        self,
        pool: str,
        owner: str,
        operator: str,
        *,
        amount: int = 0,
        operator_for_all: bool = False,
        wait: str = "committed",
    ) -> dict[str, Any]:
        body = {
            "pool": pool,
            "owner": owner,
            "operator": operator,
            "amount": str(amount),
            "operator_for_all": operator_for_all,
        }
        return self._post("/approvals", body, wait)

    # -- reads --------------------------------------------------------------------------

    def pools(self, limit: int = 1000) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = self._get("/pools", {"limit": limit})
        return out

    def pool(self, name: str) -> dict[str, Any]:
        out: dict[str, Any] = self._get(f"/pools/{name}", {})
        return out

    def balances(
        self, pool: str | None = None, account: str | None = None, limit: int = 1000
    ) -> list[dict[str, str]]:
        out: list[dict[str, str]] = self._get(
            "/balances", {"pool": pool, "account": account, "limit": limit}
        )
        return out

    def balance(self, pool: str, account: str) -> int:
        rows = self.balances(pool, account)
        return int(rows[0]["balance"]) if rows else 0

    def supply(self, pool: str) -> dict[str, Any]:
        out: dict[str, Any] = self._get("/supply", {"pool": pool})
        return out

    def transfers(
        self,
        pool: str | None = None,
        account: str | None = None,
        after: int = 0,
        limit: int = 100,
    ) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = self._get(
            "/transfers", {"pool": pool, "account": account, "after": after, "limit": limit}
        )
        return out


__all__ = ["TokensApiError", "TokensClient"]
