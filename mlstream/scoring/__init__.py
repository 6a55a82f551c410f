"""Online scoring: the river model behind one protocol, the stream scorer, monitoring and the model store."""
