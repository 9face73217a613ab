"""ONNX Runtime's scikit-learn tutorial, unchanged except for the import line.

Trains a LogisticRegression on iris, converts it with skl2onnx and runs it; prints the predicted
labels and the probabilities (a list of dicts, from ZipMap). Run it with either runtime::

    python examples/sklearn_iris_tutorial.py            # import ort as rt
    python examples/sklearn_iris_tutorial.py onnxruntime  # the original
"""

import sys

import numpy
from skl2onnx import convert_sklearn
from skl2onnx.common.data_types import FloatTensorType
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split

if len(sys.argv) > 1 and sys.argv[1] == "onnxruntime":
    import onnxruntime as rt
else:
    import ort as rt

iris = load_iris()
X, y = iris.data, iris.target
X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)
clr = LogisticRegression(max_iter=500)
clr.fit(X_train, y_train)

initial_type = [("float_input", FloatTensorType([None, 4]))]
onx = convert_sklearn(clr, initial_types=initial_type)

sess = rt.InferenceSession(onx.SerializeToString(), providers=rt.get_available_providers())
input_name = sess.get_inputs()[0].name
label_name = sess.get_outputs()[0].name
prob_name = sess.get_outputs()[1].name
print(input_name, label_name, prob_name, sess.get_outputs()[1].type)
pred_onx = sess.run([label_name], {input_name: X_test.astype(numpy.float32)})[0]
print(pred_onx)
prob_rt = sess.run([prob_name], {input_name: X_test.astype(numpy.float32)})[0]
print(prob_rt[:3])
