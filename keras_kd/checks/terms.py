"""Checks of a Distiller's terms against the Distiller and its models, run
when the Distiller is built: one Distiller per term, no softmax term on a
one-logit head."""


def claim_terms(distiller, terms):
    """Marks each term as part of `distiller`; refuses a term owned by another.

    A term is a layer holding state that trains with its Distiller (adapters,
    the weight variable, the built shapes). Shared by a second Distiller it
    either fails inside its adapter at step 1 (other shapes) or silently
    starts from, and keeps training, the first one's adapter.
    """
    for term in terms:
        owner = getattr(term, "_keras_kd_owner", None)
        if owner is not None and owner != id(distiller):
            name = getattr(term, "_keras_kd_owner_name", "another Distiller")
            kind = type(term).__name__
            raise ValueError(
                f"The term '{term.name}' ({kind}) already belongs to the Distiller "
                f"'{name}': a term holds state that trains with its Distiller (adapters, "
                "its weight), so it cannot be shared. Create a new term for this "
                f"Distiller, e.g. {kind}(...) again or "
                f"{kind}.from_config(term.get_config()) for an untrained copy."
            )
    for term in terms:
        # object.__setattr__: plain bookkeeping, not a tracked layer attribute.
        object.__setattr__(term, "_keras_kd_owner", id(distiller))
        object.__setattr__(term, "_keras_kd_owner_name", distiller.name)



# Terms that take a softmax over the class axis: over one logit it is 1, and
# the term is 0 whatever the models do.
_SOFTMAX_TERMS = ("KD", "DKD", "NKD", "DIST", "MergedKD")


def check_single_logit(distiller, terms):
    """Refuses softmax-based logit terms on a one-logit (binary) head."""
    for view, role in ((distiller.teacher_view, "teacher"), (distiller.student_view, "student")):
        shape = view.shapes.get("logits")
        if not shape or shape[-1] != 1:
            continue
        names = [t.name for t in terms if type(t).__name__ in _SOFTMAX_TERMS and t.reads_logits]
        if names:
            raise ValueError(
                f"The {role} outputs one logit (shape {tuple(shape)}), a binary head; the terms "
                f"{names} take a softmax over classes, which is 1 for a single logit, so they "
                "would be 0 and teach nothing. Give both models a 2-logit head (softmax over "
                "[negative, positive]) or distil the one logit with a feature term such as "
                "FeatureMSE('logits', 'logits')."
            )


def check_terms(distiller, terms):
    """The Distiller's checks of its terms, after it built them."""
    check_single_logit(distiller, terms)
    claim_terms(distiller, terms)

