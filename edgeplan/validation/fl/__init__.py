"""Executors of FL plans: a planned round trained and uploaded for real (local epochs, paced state_dict uploads)."""
