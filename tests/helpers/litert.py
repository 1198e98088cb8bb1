"""The TFLite interpreter for tests: LiteRT (`ai-edge-litert`), which
replaces `tf.lite.Interpreter` (deprecated for deletion since TensorFlow
2.20); `tf.lite` only where the LiteRT wheel does not install."""

try:
    from ai_edge_litert.interpreter import Interpreter
except ImportError:  # no ai-edge-litert wheel for this platform
    import tensorflow as tf

    Interpreter = tf.lite.Interpreter

__all__ = ["Interpreter"]
