import numpy as np


def fd_jacobian(f, args, argnum, eps=1e-6):
    """Central finite differences of f w.r.t. args[argnum] (Jacobian shape out + in)."""
    args = [np.array(a, dtype=float) if isinstance(a, (np.ndarray, float)) else a for a in args]
    x = args[argnum]
    y0 = np.asarray(f(*args))
    J = np.zeros(y0.shape + x.shape)
    for idx in np.ndindex(*x.shape):
        xp, xm = x.copy(), x.copy()
        xp[idx] += eps
        xm[idx] -= eps
        ap, am = list(args), list(args)
        ap[argnum], am[argnum] = xp, xm
        d = (np.asarray(f(*ap)) - np.asarray(f(*am))) / (2 * eps)
        J[(Ellipsis,) + idx] = d
    return J


def dense_chain(dims):
    """A graph x → v1 → … → y whose links are dense dims[i]×dims[i+1] (multi_dot convention)."""
    import jacc

    g = jacc.Graph("chain")
    n = len(dims) - 1
    g.add_input("x", (dims[-1],))
    prev = "x"
    for t in range(n):
        name = "y" if t == n - 1 else f"v{t + 1}"
        g.add_node(name, "abstract", [prev], {"partials": ["dense"]}, (dims[-2 - t],))
        prev = name
    g.set_outputs(["y"])
    return g
