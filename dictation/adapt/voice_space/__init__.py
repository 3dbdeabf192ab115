"""The voice space: a metric-learned speaker embedding on the frozen encoder's pooled
states (`head`), and a bank of adaptation starting points placed in that space (`bank`).

Metric-based meta-learning beside the gradient-based one (MAML): a new voice is placed
among the training speakers, and the adaptation starts from what worked for voices near it.
"""
