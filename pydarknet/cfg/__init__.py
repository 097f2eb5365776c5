"""Darknet cfg and .data files: the lark grammar, sections, typed options."""

from pydarknet.cfg.parser import parse_cfg, read_cfg, read_data_file
from pydarknet.cfg.section import Option, Section

__all__ = ["Option", "Section", "parse_cfg", "read_cfg", "read_data_file"]
