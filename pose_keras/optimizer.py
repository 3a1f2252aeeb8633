"""The optimizer `fit` trains with: Keras' Adam, updated by one fused op per variable on TF.

Keras 3's `Adam.update_step` is written with `keras.ops`, so on TensorFlow a train step
holds some twenty graph ops per trainable variable: the learning-rate and bias-correction
scalars (recomputed for every variable), the two moment updates and the weight update.
For the default 2 x 32 network (480 trainable variables) that is most of what tracing the
train step costs: a cProfile of its first step spent 28 s of a 47 s trace in
`Adam.update_step` (docs/benchmarks.md, "Start-up"). This subclass computes the scalars once per step and
updates each variable with TensorFlow's `ResourceApplyAdam`, which implements the same
rule (Kingma & Ba 2015, Algorithm 1, with epsilon added to sqrt(v), as Keras does):

    m <- m + (g - m) * (1 - beta_1)
    v <- v + (g^2 - v) * (1 - beta_2)
    w <- w - lr * sqrt(1 - beta_2^t) / (1 - beta_1^t) * m / (sqrt(v) + epsilon)

with t the 1-based step. Variables, slots, `get_config` and the iteration counter are
Keras' own, so checkpoints and backups are interchangeable with `keras.optimizers.Adam`.
Where the fused path does not apply (another backend, `amsgrad`, a distribution strategy,
sparse gradients), it is Keras' Adam unchanged.
"""

import keras


@keras.saving.register_keras_serializable(package="pose_keras")
class Adam(keras.optimizers.Adam):
    """`keras.optimizers.Adam`; on TensorFlow one `ResourceApplyAdam` per variable.

    Same arguments as `keras.optimizers.Adam` (see the module docstring for the rule).

    Examples:

    >>> optimizer = Adam(learning_rate=1e-3)
    >>> type(Adam.from_config(optimizer.get_config())).__name__, optimizer.get_config()["beta_1"]
    ('Adam', 0.9)
    """

    def _backend_update_step(self, grads, trainable_variables, learning_rate):
        if not self._fused_update_applies(grads):
            return super()._backend_update_step(grads, trainable_variables, learning_rate)
        import tensorflow as tf

        scalars = {}  # per variable dtype: lr, beta_1^t, beta_2^t, beta_1, beta_2, epsilon
        for grad, variable in zip(grads, trainable_variables, strict=True):
            dtype = variable.dtype
            if dtype not in scalars:
                step = tf.cast(self.iterations + 1, dtype)
                beta_1 = tf.constant(self.beta_1, dtype)
                beta_2 = tf.constant(self.beta_2, dtype)
                scalars[dtype] = {
                    "lr": tf.cast(learning_rate, dtype),
                    "beta1_power": tf.pow(beta_1, step),
                    "beta2_power": tf.pow(beta_2, step),
                    "beta1": beta_1,
                    "beta2": beta_2,
                    "epsilon": tf.constant(self.epsilon, dtype),
                }
            index = self._get_variable_index(variable)
            tf.raw_ops.ResourceApplyAdam(
                var=_handle(variable),
                m=_handle(self._momentums[index]),
                v=_handle(self._velocities[index]),
                grad=tf.cast(grad, dtype),
                use_locking=False,
                **scalars[dtype],
            )
        return None

    def _fused_update_applies(self, grads):
        if keras.backend.backend() != "tensorflow" or self.amsgrad:
            return False
        import tensorflow as tf

        if tf.distribute.has_strategy():  # Keras' path all-reduces the gradients
            return False
        return not any(isinstance(grad, tf.IndexedSlices) for grad in grads)


def _handle(variable):
    """The resource handle of a Keras variable (or of a tf.Variable)."""
    return getattr(variable, "value", variable).handle
