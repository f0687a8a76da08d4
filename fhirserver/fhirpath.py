"""FHIRPath expressions that clients define (custom search parameters, subscription topics):
checked strictly before they are kept. fhirpathpy's own parser recovers from syntax errors
silently (`Observation.(((` compiles), so the check parses with an error listener that refuses."""

from __future__ import annotations

from functools import cache

import fhirpathpy
from antlr4 import CommonTokenStream, InputStream, Token
from antlr4.error.ErrorListener import ErrorListener
from fhirpathpy.models import models as fhirpath_models
from fhirpathpy.parser.generated.FHIRPathLexer import FHIRPathLexer
from fhirpathpy.parser.generated.FHIRPathParser import FHIRPathParser

MODEL = fhirpath_models["r4"]


class _Refuse(ErrorListener):
    def syntaxError(self, recognizer, offendingSymbol, line, column, msg, e) -> None:
        raise SyntaxError(f"at character {column + 1}: {msg}")


def problem(expression: str, resource_type: str, variables: dict | None = None) -> str | None:
    """Return what is wrong with a FHIRPath expression (its syntax, or a function fhirpathpy
    does not implement, found by evaluating it on an empty resource of the type with these
    environment variables), or None when it works."""
    if not expression.strip():
        return "the expression is empty"
    lexer = FHIRPathLexer(InputStream(expression))
    lexer.removeErrorListeners()
    lexer.addErrorListener(_Refuse())
    tokens = CommonTokenStream(lexer)
    parser = FHIRPathParser(tokens)
    parser.removeErrorListeners()
    parser.addErrorListener(_Refuse())
    try:
        parser.expression()
        if tokens.LA(1) != Token.EOF:
            return f"unexpected {tokens.LT(1).text!r} at character {tokens.LT(1).column + 1}"
        compiled(expression)({"resourceType": resource_type}, variables or {})
    except SyntaxError as exc:
        return str(exc)
    except Exception as exc:  # fhirpathpy raises a bare Exception for an unknown function
        return str(exc) or type(exc).__name__
    return None


@cache
def compiled(expression: str):
    """The expression compiled by fhirpathpy on the R4 model, once per process."""
    return fhirpathpy.compile(expression, model=MODEL)
