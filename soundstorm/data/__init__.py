"""Speech data: built-in sentences, the espeak-ng + Lyra corpus builder, and its training loader."""
