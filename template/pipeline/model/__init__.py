"""The model behind one interface: where its files are and which format (`files`), its serving
signature read without the weights (`signatures`), loading and calling it by input name
(`loading`), and TensorFlow itself (`runtime`). Used at launch (signatures) and on workers (loading).
"""
