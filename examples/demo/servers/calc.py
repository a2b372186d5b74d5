#!/usr/bin/env python3
"""calc: arithmetic, unit conversion and summary statistics, as an MCP server."""

from __future__ import annotations

import ast
import math
import operator
import statistics as stats

from tinymcp import Tool, ToolError, serve

_OPERATORS = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod, ast.Pow: operator.pow,
    ast.USub: operator.neg, ast.UAdd: operator.pos,
}  # fmt: skip
_FUNCTIONS = {
    "sqrt": math.sqrt, "sin": math.sin, "cos": math.cos, "tan": math.tan, "log": math.log,
    "log10": math.log10, "exp": math.exp, "abs": abs, "round": round, "min": min, "max": max,
}  # fmt: skip
_CONSTANTS = {"pi": math.pi, "e": math.e}


def calculate(expression: str) -> str:
    try:
        value = _evaluate(ast.parse(expression, mode="eval").body)
    except SyntaxError:
        raise ToolError(f"{expression!r} is not an arithmetic expression") from None
    except (ArithmeticError, ValueError) as e:
        raise ToolError(f"cannot compute {expression!r}: {e}") from None
    return f"{expression} = {value:g}" if isinstance(value, float) else f"{expression} = {value}"


def _evaluate(node: ast.AST) -> float:
    """Numbers, + - * / // % **, parentheses and a few math functions: nothing else runs."""
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
        return node.value
    if isinstance(node, ast.Name) and node.id in _CONSTANTS:
        return _CONSTANTS[node.id]
    if isinstance(node, ast.UnaryOp) and type(node.op) in _OPERATORS:
        return _OPERATORS[type(node.op)](_evaluate(node.operand))
    if isinstance(node, ast.BinOp) and type(node.op) in _OPERATORS:
        left, right = _evaluate(node.left), _evaluate(node.right)
        if isinstance(node.op, ast.Pow) and abs(right) > 1000:
            raise ValueError("exponent too large")
        return _OPERATORS[type(node.op)](left, right)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in _FUNCTIONS:
        if node.keywords:
            raise ValueError("functions take positional arguments only")
        return _FUNCTIONS[node.func.id](*(_evaluate(a) for a in node.args))
    raise ValueError(f"{ast.unparse(node)!r} is not allowed (numbers, + - * / // % **, {', '.join(_FUNCTIONS)})")


# Each unit's size in its dimension's base unit (metre, gram, litre).
_UNITS = {
    "length": {"mm": 0.001, "cm": 0.01, "m": 1.0, "km": 1000.0, "in": 0.0254, "ft": 0.3048, "yd": 0.9144,
               "mi": 1609.344, "nmi": 1852.0},
    "mass": {"mg": 0.001, "g": 1.0, "kg": 1000.0, "t": 1e6, "oz": 28.349523125, "lb": 453.59237},
    "volume": {"ml": 0.001, "l": 1.0, "tsp": 0.00492892, "tbsp": 0.0147868, "cup": 0.2365882365,
               "pt": 0.473176473, "qt": 0.946352946, "gal": 3.785411784},
}  # fmt: skip
_TEMPERATURES = {"C", "F", "K"}


def convert_units(value: float, from_unit: str, to_unit: str) -> str:
    if from_unit in _TEMPERATURES and to_unit in _TEMPERATURES:
        kelvin = {"C": value + 273.15, "F": (value - 32) * 5 / 9 + 273.15, "K": value}[from_unit]
        result = {"C": kelvin - 273.15, "F": (kelvin - 273.15) * 9 / 5 + 32, "K": kelvin}[to_unit]
        return f"{value:g} °{from_unit} = {result:.4g} °{to_unit}"
    for dimension, units in _UNITS.items():
        if from_unit in units and to_unit in units:
            result = value * units[from_unit] / units[to_unit]
            return f"{value:g} {from_unit} = {result:.6g} {to_unit}"
    known = "; ".join(f"{d}: {', '.join(u)}" for d, u in _UNITS.items()) + "; temperature: C, F, K"
    raise ToolError(f"cannot convert {from_unit!r} to {to_unit!r}. Units of one kind: {known}")


def statistics(numbers: list) -> dict:
    if not numbers or not all(isinstance(n, (int, float)) and not isinstance(n, bool) for n in numbers):
        raise ToolError("numbers must be a non-empty list of numbers")
    summary = {
        "count": len(numbers), "mean": stats.fmean(numbers), "median": stats.median(numbers),
        "stdev": stats.stdev(numbers) if len(numbers) > 1 else 0.0, "min": min(numbers), "max": max(numbers),
    }  # fmt: skip
    text = ", ".join(f"{k} {v:g}" for k, v in summary.items())
    return {"content": [{"type": "text", "text": text}], "structuredContent": summary}


TOOLS = [
    Tool("calculate", "Evaluate an arithmetic expression such as '(2 + 3) * 4 / 7' or 'sqrt(2) * pi'. "
         "Supports + - * / // % **, parentheses, sqrt, sin, cos, tan, log, log10, exp, abs, round, min, max, pi, e.",
         {"expression": {"type": "string", "description": "The expression to compute"}},
         ["expression"], calculate, annotations={"readOnlyHint": True}),
    Tool("convert_units", "Convert a value from one unit to another, such as miles to kilometers or "
         "Fahrenheit to Celsius. Length: mm, cm, m, km, in, ft, yd, mi, nmi; mass: mg, g, kg, t, oz, lb; "
         "volume: ml, l, tsp, tbsp, cup, pt, qt, gal; temperature: C, F, K.",
         {"value": {"type": "number", "description": "The amount to convert"},
          "from_unit": {"type": "string", "description": "Unit of the value, e.g. 'mi'"},
          "to_unit": {"type": "string", "description": "Unit wanted, e.g. 'km'"}},
         ["value", "from_unit", "to_unit"], convert_units, annotations={"readOnlyHint": True}),
    Tool("statistics", "Summarise a list of numbers: count, mean (average), median, standard deviation, min and max.",
         {"numbers": {"type": "array", "items": {"type": "number"}, "description": "The data"}},
         ["numbers"], statistics, annotations={"readOnlyHint": True},
         outputSchema={"type": "object", "properties": {k: {"type": "number"} for k in
                       ("count", "mean", "median", "stdev", "min", "max")}}),
]  # fmt: skip

if __name__ == "__main__":
    serve("calc", "1.0", TOOLS)
