"""Runs a module's docstring examples and checks that they are all there.

`doctest.testmod(module).failed == 0` alone passes when the examples are
deleted; here each named object must still hold at least its number of
examples (`>>>` lines), and all of them must run and pass.
"""

import doctest


def assert_doctests(module, examples):
    """`examples` maps a name in `module` (e.g. "kd_loss" or
    "Class.method") to the fewest examples its docstring must hold."""
    prefix = module.__name__ + "."
    found = {test.name[len(prefix):]: len(test.examples)
             for test in doctest.DocTestFinder().find(module) if test.examples}
    missing = {name: (floor, found.get(name, 0)) for name, floor in examples.items()
               if found.get(name, 0) < floor}
    assert not missing, (f"{module.__name__}: docstring examples missing "
                         f"(name: (expected at least, found)): {missing}")
    result = doctest.testmod(module)
    assert result.failed == 0, f"{result.failed} of {module.__name__}'s examples failed"
    assert result.attempted >= sum(examples.values()), result
    return result
