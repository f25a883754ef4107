"""Menu definitions: loading ``config/menus.yaml`` into validated models and linting them."""

from .conditions import Condition, ConditionError, parse_condition
from .lint import lint
from .loader import LoadedMenus, load_menus
from .problems import MenuError, Problem

__all__ = ["Condition", "ConditionError", "LoadedMenus", "MenuError", "Problem", "lint", "load_menus",
           "parse_condition"]
