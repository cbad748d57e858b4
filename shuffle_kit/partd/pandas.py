"""partd.pandas: the DataFrame codecs and partd's module-level helpers."""

from shuffle_kit.codecs.pandas_blocks import PandasBlocks, deserialize, join, serialize
from shuffle_kit.codecs.pandas_columns import PandasColumns

__all__ = ["PandasBlocks", "PandasColumns", "deserialize", "join", "serialize"]
