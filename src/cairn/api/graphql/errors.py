"""Every GraphQL error with a stable ``extensions.code``.

error                                   extensions.code
a cairn error (auth, domain, app …)     its REST problem code (``order.not_found``,
                                        ``app.validation``…), with ``status``: REST's status
a syntax error, too many tokens         GRAPHQL_PARSE_FAILED
a variable's value of the wrong type    app.validation (REST's code for a body field of the
or out of range (an Int over 2^31)      wrong type), with status 422
a limit (limits.py), or introspection   QUERY_TOO_DEEP, QUERY_TOO_COMPLEX, TOO_MANY_ALIASES
nested too deep
any other validation or input error     GRAPHQL_VALIDATION_FAILED
anything else                           INTERNAL_SERVER_ERROR, its message hidden and the
                                        error logged with its traceback (REST's 500)
"""

from __future__ import annotations

from cairn.api.problems import jsonable, status_of
from cairn.errors import CairnError
from cairn.observability.logging import get_logger
from graphql import GraphQLError, GraphQLSyntaxError

_log = get_logger("cairn.graphql")

INTERNAL_MESSAGE = "an unexpected error occurred; it has been logged"
#: How graphql-core starts the error of a variable whose value does not fit its type.
BAD_VARIABLE = "Variable '$"
#: graphql-core's ``MaxIntrospectionDepthRule`` (run by Strawberry) says only this.
INTROSPECTION_TOO_DEEP = "Maximum introspection depth exceeded"


def label(error: GraphQLError) -> None:
    """Give ``error`` its ``extensions.code`` (in place: both transports format it later)."""
    extensions = dict(error.extensions or {})
    if "code" in extensions:
        return
    original = error.original_error
    if isinstance(original, CairnError):
        extensions["code"] = original.code
        extensions["status"] = status_of(original)
        for key, value in original.details.items():
            extensions.setdefault(key, jsonable(value))
    elif error.message.startswith(BAD_VARIABLE) and not error.path:
        # The request's data, not its document, is wrong: REST's code for a field of the
        # wrong type or out of range, so that the same bad input gets the same code.
        extensions["code"] = "app.validation"
        extensions["status"] = 422
    elif original is None and error.message == INTROSPECTION_TOO_DEEP:
        extensions["code"] = "QUERY_TOO_DEEP"
    elif isinstance(error, GraphQLSyntaxError):
        extensions["code"] = "GRAPHQL_PARSE_FAILED"
    elif original is None or isinstance(original, GraphQLError):
        extensions["code"] = "GRAPHQL_VALIDATION_FAILED"
    else:
        _log.error("graphql_unhandled_exception", path=error.path, exc_info=original)
        extensions["code"] = "INTERNAL_SERVER_ERROR"
        error.message = INTERNAL_MESSAGE
    error.extensions = extensions
