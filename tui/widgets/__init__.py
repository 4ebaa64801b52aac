"""The widgets of the chat screen: they take plain data, emit signals, never import core."""
