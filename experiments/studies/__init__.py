"""Studies: experiments that answer a question of the paper, each a command of its own
(``python -m experiments.studies.<name>``): the multi-goal figure (``multigoal``), skill
transfer (``transfer``, ``transfer_report``) and where a learner walks (``locomotion``)."""
