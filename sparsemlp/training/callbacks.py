"""Callback: hooks into a trainer's fit (start, end of each epoch with a stop vote, end)."""

__all__ = ["Callback"]


class Callback:
    """Hooks called by the trainers' ``fit``; ``on_epoch_end`` may return True to stop."""

    def on_train_begin(self, trainer):
        """Run once before the first epoch of :meth:`Trainer.fit`.

        Parameters
        ----------
        trainer : Trainer
            The running trainer.
        """

    def on_epoch_end(self, trainer, record):
        """Run after each epoch; return True to stop training.

        Parameters
        ----------
        trainer : Trainer
            The running trainer.
        record : dict
            The epoch's metrics (as written to ``metrics.jsonl``).

        Returns
        -------
        bool or None
            True stops training after this epoch.
        """

    def on_train_end(self, trainer):
        """Run once when :meth:`Trainer.fit` finishes (also after an interruption).

        Parameters
        ----------
        trainer : Trainer
            The trainer.
        """
