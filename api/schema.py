"""OpenAPI extensions: how the schema describes Gantry's token authentication."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class TokenAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "api.authentication.TokenAuthentication"
    name = "tokenAuth"

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "`Token <key>`; make a key on the API tokens page or with "
            "`manage.py drf_create_token USER`.",
        }


#: Answers any operation may give, added where a view did not document its own.
_COMMON = {
    "401": "Not logged in, or a bad or revoked token.",
    "429": "Too many requests; wait for the number of seconds in Retry-After.",
}
_WITH_INPUT = {"400": "Invalid input; `errors` says which field and why."}
_WITH_BODY = {
    "413": "The request body is larger than the limit.",
    "415": "The body is not JSON (send Content-Type: application/json).",
}
_WITH_LOOKUP = {"404": "No such object among the caller's teams' (never 403), or no such page."}


def add_error_responses(result, generator, request, public):
    """Postprocessing hook: every error answer an operation can give is in the schema, each a
    JSON body with a `message`."""
    error_ref = {"$ref": "#/components/schemas/Error"}
    for path, methods in result.get("paths", {}).items():
        for method, operation in methods.items():
            if method not in {"get", "post", "put", "patch", "delete"}:
                continue
            extra = dict(_COMMON)
            params = operation.get("parameters") or []
            if params or "requestBody" in operation:
                extra.update(_WITH_INPUT)
            if "requestBody" in operation:
                extra.update(_WITH_BODY)
            if "{" in path or any(p.get("name") == "page" for p in params):
                extra.update(_WITH_LOOKUP)
            if path == "/api/schema/":
                extra = {}
            responses = operation.setdefault("responses", {})
            for code, description in extra.items():
                responses.setdefault(
                    code,
                    {
                        "description": description,
                        "content": {"application/json": {"schema": error_ref}},
                    },
                )
    return result
